"""GLiNER zero-shot NER: our engine vs the `gliner` package (0.2.29) on the same checkpoint and texts.

The checkpoint is a random GLiNER in a real one's shape (gliner_small-v2.1: a deberta-v3-small backbone —
6 layers, hidden 768, 12 heads, 128k vocabulary — and GLiNER hidden 512, markerV0, max_width 12), built by the
gliner package itself offline with a tokenizer we build (tests/gliner_fixtures.py); its head is scaled so that
random weights find a realistic number of entities. The reference runs in .venv-gliner (a persistent worker,
bench/gliner_ref_worker.py) with the same thread count; rounds interleave the configurations (order rotated
per round), each timing one pass over all texts, texts -> entities on both sides.

    .venv/bin/python bench/bench_gliner.py [--rounds 3] [--texts 16] [--threads 2] [--gliner-batch 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.catalog import Catalog, CatalogEntry  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.pool import PoolConfig  # noqa: E402
from engine.scheduler import SchedulerConfig  # noqa: E402
from tests.gliner_fixtures import REF_PYTHON, ReferenceWorker, WORDS, build_tokenizer, deberta_v3, gliner_config, run_reference  # noqa: E402

LABELS = ["person", "company", "city", "product"]
# Random weights put span probabilities anywhere: the threshold is this quantile of them on a few of the texts
# (about one span in a hundred passes it, then the greedy decoding keeps the non-overlapping best).
QUANTILE = 0.99


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = WORDS + ["Alice", "Bob", "Acme", "Berlin", "iPhone", "Tuesday", ",", "."]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(15, 120))) for _ in range(n)]


def build_checkpoint(work: Path, texts: list[str]) -> tuple[Path, float]:
    tok = build_tokenizer(work / "tokenizer", extra_tokens=128_000 - 170)
    vocab = json.loads((tok / "tokenizer.json").read_text())["model"]["vocab"]
    enc = deberta_v3(len(vocab), hidden=768, layers=6, heads=12, intermediate=3072)
    spec = {"tokenizer": str(tok), "out": str(work / "out"), "cases": [{
        "name": "small", "encoder_config": enc, "gliner": gliner_config("markerV0", 512), "seed": 0, "scale": 3.0,
        "label_sets": [LABELS], "texts": texts[:4], "decode": [{"quantile": QUANTILE, "flat": True,
                                                                 "multi_label": False}]}]}
    out = run_reference(spec, work, timeout=1800) / "small"
    threshold = torch.load(out / "ref.pt")["decode"][0]["threshold"]
    return out / "model", threshold


async def main_async(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    texts = make_texts(args.texts)
    work = Path(tempfile.mkdtemp(prefix="bench_gliner_"))
    started = time.perf_counter()
    model_dir, threshold = build_checkpoint(work, texts)
    print(f"checkpoint built in {time.perf_counter() - started:.0f} s: {model_dir}", flush=True)
    catalog = Catalog()
    for dtype in args.dtypes:
        catalog.add(CatalogEntry(id=f"ours-{dtype}", source=f"path:{model_dir}", task="ner", runtime="gliner",
                                 dtype=dtype))
    engine = Engine(catalog, PoolConfig(device="cpu"), SchedulerConfig(request_timeout_s=3600))
    await engine.start(preload=[f"ours-{d}" for d in args.dtypes])
    ref = ReferenceWorker(REF_PYTHON, ROOT / "bench" / "gliner_ref_worker.py", model_dir, texts, LABELS, threshold,
                          work, str(args.threads))

    async def ours(model_id: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        out = await engine.zero_shot_entities(model_id, texts, LABELS, threshold=threshold)
        return time.perf_counter() - t0, sum(len(x) for x in out.entities)

    configs: dict[str, object] = {f"ours {d}": f"ours-{d}" for d in args.dtypes}
    configs.update({f"gliner bs={b}": b for b in args.gliner_batch})
    for name, target in configs.items():  # warm-up (loads, first-call costs)
        await ours(target) if isinstance(target, str) else ref.run(target)  # type: ignore[arg-type]
    times: dict[str, list[float]] = {name: [] for name in configs}
    counts: dict[str, int] = {}
    names = list(configs)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            target = configs[name]
            seconds, n = await ours(target) if isinstance(target, str) else ref.run(target)  # type: ignore[arg-type]
            times[name].append(seconds)
            counts[name] = n
    ref.close()
    await engine.shutdown()
    words = sum(len(t.split()) for t in texts)
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True,
                text=True).stdout.splitlines() if line.startswith("Model name")), platform.processor())
    print(f"\nCPU: {cpu}; torch threads {args.threads}; {len(texts)} texts, {words} words, labels {LABELS}, "
          f"threshold {threshold}; {args.rounds} interleaved rounds")
    best_ref = min(statistics.median(times[n]) for n in names if n.startswith("gliner"))
    print("| configuration | median s / pass | best s | texts/s | entities/s | entities | vs gliner (median) |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        med, best = statistics.median(times[name]), min(times[name])
        print(f"| {name} | {med:.3f} | {best:.3f} | {len(texts) / med:.1f} | {counts[name] / med:.1f} | "
              f"{counts[name]} | {best_ref / med:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", nargs="+", default=["auto"])  # auto: bf16 where the CPU has fast bf16
    parser.add_argument("--gliner-batch", nargs="+", type=int, default=[8])  # gliner's default
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
