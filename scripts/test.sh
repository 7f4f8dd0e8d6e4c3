#!/usr/bin/env bash
# The test command: set up .venv with the test extras, run the whole suite (no GPU; no network beyond the
# package registries), then the MCP protocol checks (MCP Inspector CLI on both transports and the official
# conformance suite, installed from npm into .npm-tools/). Extra arguments go to pytest; set
# SIE_SKIP_PROTOCOL_CHECKS=1 to run pytest alone.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/setup_gliner_ref.sh  # .venv-gliner: the gliner package, the reference of tests/test_gliner.py
scripts/install_helm.sh && scripts/install_prometheus.sh  # chart and scaling tests (tests/test_chart.py, test_deploy_*)
scripts/install_postgres.sh  # the graph store tests start a PostgreSQL server (tests/pg_server.py)
scripts/install_chromium.sh  # the knowledge-graph HTML view test drives Debian's chromium
scripts/install_langchain_env.sh  # .venv-langchain for the langchain-mcp-adapters test (it needs mcp<2)
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
pyright engine tools ontology sie_mcp  # type check ([tool.pyright] in pyproject.toml); zero errors
python -m pytest "$@"
if [ -z "${SIE_SKIP_PROTOCOL_CHECKS:-}" ]; then
  scripts/quickstart_check.sh  # the README quick start as written (npx --yes Inspector 0.15, curl)
  scripts/mcp_protocol_checks.sh
  # Again against a stateless server, whose tools/call POSTs take sie-mcp's single-call path
  # (sie_mcp/mcp_single_call.py). Multiple SSE streams per session need sessions: expected to fail here.
  MCP_CHECKS_SERVER_ARGS=--stateless-http MCP_CHECKS_STDIO=0 MCP_CHECKS_OUT_DIR=.npm-tools/results-stateless \
    MCP_CHECKS_EXTRA_EXPECTED_FAILURES=server-sse-multiple-streams scripts/mcp_protocol_checks.sh
fi
