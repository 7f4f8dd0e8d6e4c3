#!/usr/bin/env bash
# A reference library's own environment, apart from ours (its transformers pin differs): the parity tests run
# the reference in a subprocess of it. Idempotent: a venv in which IMPORTS import is kept.
#   scripts/setup_reference_venv.sh VENV "IMPORTS" PIP_SPEC…
#   e.g. scripts/setup_reference_venv.sh .venv-gliner2 "gliner2, transformers" "gliner2[local]==2.1.0"
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 imports=$2
shift 2
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $imports" 2>/dev/null; then
  exit 0
fi
echo "==> creating $venv ($*)" >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
if command -v nvidia-smi >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install -q "torch>=2.10"
else
  "$venv/bin/python" -m pip install -q "torch==2.13.0"  # a local CPU wheel on our machines
fi
"$venv/bin/python" -m pip install -q "$@"
