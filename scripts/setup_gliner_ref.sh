#!/usr/bin/env bash
# The GLiNER reference environment for the parity tests and the benchmark: `.venv-gliner/` with the `gliner`
# package (0.2.29 pins transformers<5.17, which our own test environment is past, so it gets its own venv).
set -euo pipefail
exec "$(dirname "$0")/setup_reference_venv.sh" .venv-gliner "gliner, tokenizers" "gliner==0.2.29" \
  "transformers>=4.51.3,<5.17"
