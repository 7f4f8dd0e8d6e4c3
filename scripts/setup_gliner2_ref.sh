#!/usr/bin/env bash
# The GLiNER2 reference environment for tests/test_gliner2.py and bench/bench_gliner2.py: `.venv-gliner2/` with
# the `gliner2` package (2.1.0, with the transformers it pins), apart from our own test environment and from
# .venv-gliner (gliner 0.2.x pins another transformers). Idempotent: a venv whose gliner2 imports is kept. The
# tests run the reference in a subprocess of this venv; nothing of ours imports gliner2.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-gliner2
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import gliner2, transformers, tokenizers" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install -q "torch>=2.10"
else
  "$venv/bin/python" -m pip install -q "torch==2.13.0"  # a local CPU wheel on our machines
fi
"$venv/bin/python" -m pip install -q "gliner2[local]==2.1.0"  # local: torch, transformers (<6), safetensors
