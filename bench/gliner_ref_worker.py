"""The `gliner` side of bench/bench_gliner.py, run by .venv-gliner/bin/python (see that file).

Loads a checkpoint with GLiNER.from_pretrained (offline), then serves lines on stdin:
`run BATCH_SIZE` -> times one `inference` over the texts and prints `seconds entities`.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from gliner import GLiNER


def main() -> None:
    model_dir, texts_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    spec = json.loads(open(texts_path).read())
    model = GLiNER.from_pretrained(model_dir, local_files_only=True, map_location="cpu")
    model.eval()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd != "run":
            break
        started = time.perf_counter()
        out = model.inference(spec["texts"], spec["labels"], threshold=spec["threshold"], batch_size=int(arg))
        print(f"{time.perf_counter() - started:.6f} {sum(len(x) for x in out)}", flush=True)


if __name__ == "__main__":
    main()
