#!/usr/bin/env bash
# No-regression check of the working tree against an earlier revision, side by side on this machine:
# engine (whole corpus, fp32 and bf16), pool (hot swap), surface (per-call latency through HTTP and MCP)
# and families (ours vs transformers), each revision running its own benchmark scripts with this
# checkout's .venv, in alternating order (base, head, head, base, …) so both see the same machine.
#   bench/regression.sh BASE_REV [ROUNDS]      (default 2 rounds; logs in bench/results/regression-<date>/)
# Read the figures per benchmark across the logs: a change is a regression only where head is slower than
# base in every round by more than the spread between rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="$1"; rounds="${2:-2}"
head_dir="$PWD"; py="$PWD/.venv/bin/python"
out="$PWD/bench/results/regression-$(date +%Y%m%d-%H%M)"; mkdir -p "$out"
base_dir="$(mktemp -d)/base"
git worktree add --detach "$base_dir" "$base_rev" >/dev/null
trap 'git worktree remove --force "$base_dir"' EXIT
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

one() {  # one() SIDE DIR ROUND: every benchmark once, from DIR's own scripts and packages
  local side=$1 dir=$2 r=$3
  cd "$dir"
  export PYTHONPATH="$dir"  # this revision's engine/, sie_mcp/, tools/ ahead of the editable install's
  echo "[$(date +%T)] round $r: $side" >&2
  "$py" bench/bench_engine.py --only ours --runs 3 --limit "${REGRESSION_TEXTS:-300}" 2>&1 \
    | grep -e '^CPU' -e '^|' > "$out/$r-$side-engine.md"
  "$py" bench/bench_pool.py --repeats 2 --calls 10 > "$out/$r-$side-pool.md" 2>&1
  "$py" bench/bench_surface.py --skip-throughput --calls 100 --latency-s 3 > "$out/$r-$side-surface.md" 2>&1
  "$py" bench/bench_families.py --limit 40 --runs 1 2>&1 | grep -e '^CPU' -e '^|' > "$out/$r-$side-families.md"
  cd "$head_dir"
}

for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then one base "$base_dir" "$r"; one head "$head_dir" "$r"
  else one head "$head_dir" "$r"; one base "$base_dir" "$r"; fi
done
echo "logs in $out" >&2
