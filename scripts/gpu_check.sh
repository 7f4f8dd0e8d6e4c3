#!/usr/bin/env bash
# GPU checks (≤ 8 minutes on one GPU): CUDA parity for the flash-attn / torch varlen / padded SDPA
# backends and for every family, then the engine benchmark on the GPU (ours vs sentence-transformers,
# bf16 and fp16). Writes logs to ${OUT:-/tmp/gpu_check}.
#
# Two ways to run it:
# - on a GPU machine with network: it installs what is missing (a CUDA torch, the test extras, flash-attn);
# - on a machine with no network whose Python already has torch (CUDA), transformers and
#   sentence-transformers: build `.gpu/` first with scripts/make_gpu_assets.sh (the MiniLM weights as a
#   stand-in package) and carry it; nothing is installed, the repository runs from its source tree.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/gpu_check}"; mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

py=python3
if [ -d .gpu/site ]; then
  export PYTHONPATH="$PWD:$PWD/.gpu/site${PYTHONPATH:+:$PYTHONPATH}"
else
  python3 -m venv --system-site-packages .venv-gpu && . .venv-gpu/bin/activate && py=python
  $py -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || $py -m pip install -q "torch>=2.10"
  $py -m pip install -q -e ".[test]" 2>&1 | tail -2
  $py -c "import flash_attn" 2>/dev/null || timeout 120 $py -m pip install -q flash-attn --no-build-isolation 2>&1 \
    | tail -2 || echo "flash-attn not installable here: its tests skip, torch varlen still runs"
fi
$py - <<'PY' 2>&1 | tee -a "$out/gpu.txt"
import importlib.util, inspect, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name())
from torch.nn.attention.varlen import varlen_attn
print("varlen_attn", inspect.signature(varlen_attn))
print("flash_attn", "installed" if importlib.util.find_spec("flash_attn") else "not installed")
PY

timeout 240 $py -m pytest -q -s -p no:cacheprovider tests/gpu 2>&1 | tee "$out/parity.log"
parity=${PIPESTATUS[0]}
timeout 240 $py bench/bench_engine.py --device cuda --runs 10 --only ours,st 2>&1 | tee "$out/bench.log"
bench=${PIPESTATUS[0]}
echo "parity exit $parity, bench exit $bench"
exit $(( parity || bench ))
