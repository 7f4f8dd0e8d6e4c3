"""The `gliner2` side of bench/bench_gliner2.py, run by .venv-gliner2/bin/python (see that file).

Loads a checkpoint with GLiNER2.from_pretrained (offline) in the asked dtype, then serves lines on stdin:
`run BATCH_SIZE` -> times one `batch_extract_entities` over the texts and prints `seconds entities`.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from gliner2 import GLiNER2


def main() -> None:
    model_dir, texts_path, threads, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(threads)
    spec = json.loads(open(texts_path).read())
    model = GLiNER2.from_pretrained(model_dir, map_location="cpu")
    model.to(getattr(torch, dtype)).eval()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd != "run":
            break
        started = time.perf_counter()
        out = model.batch_extract_entities(spec["texts"], spec["labels"], batch_size=int(arg),
                                           threshold=spec["threshold"])
        found = sum(len(v) for r in out for v in r.get("entities", {}).values())
        print(f"{time.perf_counter() - started:.6f} {found}", flush=True)


if __name__ == "__main__":
    main()
