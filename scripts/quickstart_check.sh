#!/usr/bin/env bash
# The README quick start, run as written: the block after `<!-- quickstart: serve -->` (setup + serve, in
# the background) and the block after `<!-- quickstart: client -->` (npx --yes Inspector 0.15 on the
# machine's Node, and curl). Passes when both calls answer with results. Stops the server it started.
set -euo pipefail
cd "$(dirname "$0")/.."
block() {  # the fenced block after the marker $1 in README.md
  awk -v m="<!-- quickstart: $1 -->" '$0 == m {f = 1; next} f && /^```/ {if (in_) exit; in_ = 1; next} in_ {print}' README.md
}
serve="$(block serve)"; client="$(block client)"
[[ -n "$serve" && -n "$client" ]] || { echo "quickstart: README blocks not found" >&2; exit 1; }
out="$(mktemp -d)"
export SIE_DATA_DIR="$out/data" HF_HUB_OFFLINE=1
bash -c "$serve" >"$out/serve.log" 2>&1 &
pid=$!
cleanup() { pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 600); do
  curl -sf http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$out/serve.log" >&2; echo "quickstart: server exited" >&2; exit 1; }
  sleep 0.5
done
timeout 300 bash -c "$client" >"$out/client.log" 2>"$out/client.err" || { cat "$out/client.err" >&2; exit 1; }
grep -q '"Laptops"' "$out/client.log" || { cat "$out/client.log" "$out/client.err" >&2; echo "quickstart: classify answer missing" >&2; exit 1; }
grep -q '"relevance\|"score"' "$out/client.log" || { cat "$out/client.log" >&2; echo "quickstart: rerank answer missing" >&2; exit 1; }
echo "quickstart: README serve + client blocks ran as written"
