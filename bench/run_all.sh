#!/usr/bin/env bash
# Run every benchmark in sequence (never two at once on a small machine) and keep the logs.
#   bench/run_all.sh [outdir]      (default: bench/results/<date>)
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
out="${1:-bench/results/$(date +%Y%m%d-%H%M)}"; mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python bench/bench_engine.py --runs 5 2>&1 | grep -v -e Warning -e 'Loading weights' | tee "$out/engine.md"
python bench/bench_engine.py --runs 3 --only ours --sweep --limit 1500 2>&1 | grep '^|' | tee "$out/engine_sweep.md"
python bench/bench_pool.py 2>&1 | tee "$out/pool.md"
python bench/bench_layers.py 2>&1 | tee "$out/layers.md"
python bench/bench_surface.py 2>&1 | tee "$out/surface.md"
[ -f bench/bench_families.py ] && python bench/bench_families.py --limit 150 --runs 3 2>&1 | tee "$out/families.md"
echo "logs in $out"
