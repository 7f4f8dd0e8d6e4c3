#!/usr/bin/env bash
# The GLiNER2 reference environment for tests/test_gliner2.py and bench/bench_gliner2.py: `.venv-gliner2/` with
# the `gliner2` package (2.1.0, with the transformers it pins; `local`: torch, transformers <6, safetensors),
# apart from our own test environment and from .venv-gliner (gliner 0.2.x pins another transformers). Nothing of
# ours imports gliner2.
set -euo pipefail
exec "$(dirname "$0")/setup_reference_venv.sh" .venv-gliner2 "gliner2, transformers, tokenizers" "gliner2[local]==2.1.0"
