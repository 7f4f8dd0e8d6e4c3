#!/usr/bin/env bash
# .venv-langchain: langchain-mcp-adapters (which requires mcp<2) for examples/agents/langchain_mcp_tools.py
# and its test. It is a client of a running sie-mcp, so it gets its own environment. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if .venv-langchain/bin/python -c "import langchain_mcp_adapters" 2>/dev/null; then
  exit 0
fi
echo "==> creating .venv-langchain (langchain-mcp-adapters)" >&2
python3 -m venv .venv-langchain
.venv-langchain/bin/python -m pip install -q "langchain-mcp-adapters>=0.1,<0.4" "langchain-core>=0.3"
