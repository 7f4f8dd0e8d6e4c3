#!/usr/bin/env bash
# The test command: set up .venv with the test extras, run the whole suite (no GPU; no network beyond the
# package registries), then the MCP protocol checks (MCP Inspector CLI on both transports and the official
# conformance suite, installed from npm into .npm-tools/). Extra arguments go to pytest; set
# SIE_SKIP_PROTOCOL_CHECKS=1 to run pytest alone.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m pytest "$@"
if [ -z "${SIE_SKIP_PROTOCOL_CHECKS:-}" ]; then
  scripts/mcp_protocol_checks.sh
fi
