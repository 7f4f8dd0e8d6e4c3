#!/usr/bin/env bash
# The GLiNER reference environment for the parity tests and the benchmark: `.venv-gliner/` with the `gliner`
# package (0.2.29 pins transformers<5.17, which our own test environment is past, so it gets its own venv).
# Idempotent: a venv whose gliner imports is kept. The tests run the reference in a subprocess of this venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-gliner
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import gliner, tokenizers" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install -q "torch>=2.10"
else
  "$venv/bin/python" -m pip install -q "torch==2.13.0"  # a local CPU wheel on our machines
fi
"$venv/bin/python" -m pip install -q "gliner==0.2.29" "transformers>=4.51.3,<5.17"
