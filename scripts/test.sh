#!/usr/bin/env bash
# The test command: set up .venv with the test extras, then run the whole suite (no network needed
# beyond the package registries; no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m pytest "$@"
