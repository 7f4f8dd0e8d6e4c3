"""GLiNER2 entities: our engine vs the `gliner2` package's own batch API (2.1.0) on the same checkpoint and texts.

The checkpoint is a random GLiNER2 in a real one's shape (fastino/gliner2-base-v1: DeBERTa-v3-base, 12 layers,
hidden 768, 12 heads, 128k vocabulary, max_width 8), built by gliner2 itself offline with a tokenizer we build
(tests/gliner_fixtures.py, tests/gliner2_reference.py), its random weights shaped so that entities are found
(count_pred predicts one instance; the threshold is a quantile of the span probabilities). The reference runs
`batch_extract_entities` in .venv-gliner2 (a persistent worker, bench/gliner2_ref_worker.py) with the same
thread count and dtype; rounds interleave the configurations (order rotated per round), each timing one pass
over all texts, texts -> entities on both sides. Texts are news-length (150-250 words, ~200-300 tokens).

Also printed: the CPU, and our rate as a share of this CPU's measured GEMM rate in each dtype (a [4096, 768] x
[768, 3072] matmul): the backbone's linear-layer FLOPs of one pass (2 x tokens x linear parameters) over the
pass's seconds, divided by that rate. bf16 runs only where the CPU has AVX512-BF16 or AMX (lscpu flags).
`--per-text` adds ours with one call per text (each text its own forward: no packing across texts), which
splits our gain into packing (ours vs ours one text per call) and the rest: our forward pass and the
per-schema Python work gliner2 repeats for every text (ours one text per call vs gliner2).

    .venv/bin/python bench/bench_gliner2.py [--texts 1000] [--rounds 3] [--threads 2] [--ref-batch 8] [--per-text]
    .venv/bin/python bench/bench_gliner2.py --tiny --texts 20 --rounds 1   # smoke run: a test-sized model
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
from engine.models.gliner2 import Gliner2Model  # noqa: E402
from engine.pool import PoolConfig  # noqa: E402
from engine.scheduler import SchedulerConfig  # noqa: E402
from tests.gliner_fixtures import REF2_PYTHON, ReferenceWorker, WORDS, build_tokenizer, deberta_v3, run_gliner2_reference  # noqa: E402
from tools.gliner2 import entities_schema  # noqa: E402

LABELS = ["person", "company", "city", "product"]
QUANTILE = 0.995  # of span probabilities: a few entities per text pass, then the greedy decoder
NAMES = ["Alice", "Bob", "Acme", "Berlin", "iPhone", "Tuesday", "Reuters", "Google", "Paris", "Smith"]


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = WORDS + NAMES + [",", ",", "."]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(150, 250))) + "." for _ in range(n)]


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                platform.processor())


def has_fast_bf16() -> bool:
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return "avx512_bf16" in flags or "amx_bf16" in flags


def gemm_rate(dtype: torch.dtype, rounds: int = 5) -> float:
    """FLOP/s of a [4096, 768] x [768, 3072] matmul in `dtype` (best of `rounds`)."""
    a, b = torch.randn(4096, 768, dtype=dtype), torch.randn(768, 3072, dtype=dtype)
    _ = a @ b
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        _ = a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 4096 * 768 * 3072 / best


def build_checkpoint(work: Path, texts: list[str], tiny: bool) -> tuple[Path, float]:
    tok = build_tokenizer(work / "tokenizer", extra_tokens=0 if tiny else 128_000 - 170)
    vocab = len(json.loads((tok / "tokenizer.json").read_text())["model"]["vocab"])
    enc = deberta_v3(vocab) if tiny else deberta_v3(vocab, hidden=768, layers=12, heads=12, intermediate=3072)
    spec = {"tokenizer": str(tok), "out": str(work / "out"), "cases": [{
        "name": "base", "encoder_config": enc, "seed": 0, "max_width": 8, "texts": texts[:4],
        "shape": {"scale": 2.0, "attention_scale": 2.0, "count": 1, "count_bias": 20.0},
        "runs": [{"name": "entities", "kind": "entities", "spec": LABELS, "quantile": QUANTILE}]}]}
    out = run_gliner2_reference(spec, work, timeout=3600) / "base"
    return out / "model", torch.load(out / "ref.pt")["runs"]["entities"]["threshold"]


def linear_flops(model: Gliner2Model, tokens: int) -> float:
    """2 x tokens x the backbone's linear-layer parameters (the GEMMs that dominate a pass)."""
    params = sum(m.weight.numel() for m in model.backbone.modules() if isinstance(m, torch.nn.Linear))
    return 2.0 * tokens * params


async def main_async(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    dtypes = args.dtypes or (["float32", "bfloat16"] if has_fast_bf16() else ["float32"])
    texts = make_texts(args.texts)
    work = Path(tempfile.mkdtemp(prefix="bench_gliner2_"))
    started = time.perf_counter()
    model_dir, threshold = build_checkpoint(work, texts, args.tiny)
    print(f"checkpoint built in {time.perf_counter() - started:.0f} s: {model_dir}", flush=True)
    catalog = Catalog()
    for dtype in dtypes:
        catalog.add(CatalogEntry(id=f"ours-{dtype}", source=f"path:{model_dir}", task="extract", runtime="gliner2",
                                 dtype=dtype))
    engine = Engine(catalog, PoolConfig(device="cpu"), SchedulerConfig(request_timeout_s=3600))
    await engine.start(preload=[f"ours-{d}" for d in dtypes])
    refs = {d: ReferenceWorker(REF2_PYTHON, ROOT / "bench" / "gliner2_ref_worker.py", model_dir, texts, LABELS,
                               threshold, work, str(args.threads), d) for d in dtypes}
    schema = entities_schema(LABELS)

    async def ours(model_id: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        out = await engine.schema_extract(model_id, texts, schema, threshold)
        return time.perf_counter() - t0, sum(len(r.entities) for r in out)

    async def ours_per_text(model_id: str) -> tuple[float, int]:
        """One call per text, in sequence: no packing across texts (the packing's share of the gain)."""
        t0 = time.perf_counter()
        found = 0
        for text in texts:
            found += sum(len(r.entities) for r in await engine.schema_extract(model_id, [text], schema, threshold))
        return time.perf_counter() - t0, found

    configs: dict[str, tuple[str, object]] = {}
    for d in dtypes:
        configs[f"ours {d}"] = ("ours", f"ours-{d}")
        if args.per_text:
            configs[f"ours {d} one text per call"] = ("ours-per-text", f"ours-{d}")
        configs[f"gliner2 {d} batch_extract_entities bs={args.ref_batch}"] = (d, args.ref_batch)

    async def run(target: tuple[str, object]) -> tuple[float, int]:
        kind, arg = target
        if kind == "ours":
            return await ours(str(arg))
        if kind == "ours-per-text":
            return await ours_per_text(str(arg))
        return refs[kind].run(int(arg))  # type: ignore[arg-type]

    for target in configs.values():  # warm-up (loads, first-call costs)
        await run(target)
    times: dict[str, list[float]] = {name: [] for name in configs}
    counts: dict[str, int] = {}
    names = list(configs)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds, n = await run(configs[name])
            print(f"round {r + 1}: {name}: {seconds:.2f} s, {n} entities", flush=True)  # progress
            times[name].append(seconds)
            counts[name] = n
    for ref in refs.values():
        ref.close()
    model = engine.pool.model_info(f"ours-{dtypes[0]}")
    assert isinstance(model, Gliner2Model)
    tokens = sum(len(it) for it in model.front.prepare(texts, schema).items)
    flops = linear_flops(model, tokens)
    await engine.shutdown()
    words = sum(len(t.split()) for t in texts)
    print(f"\nCPU: {cpu_model()}; torch threads {args.threads}; cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}; {len(texts)} texts, {words} words, {tokens} prompt+text "
          f"tokens, labels {LABELS}, threshold {threshold}; {args.rounds} interleaved rounds")
    rates = {d: gemm_rate(getattr(torch, d)) for d in dtypes}
    print("measured GEMM rate: " + ", ".join(f"{d} {r / 1e9:.0f} GFLOP/s" for d, r in rates.items()))
    print("| configuration | median s / pass | best s | texts/s | entities | vs gliner2 same dtype | "
          "share of GEMM rate |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        med, best = statistics.median(times[name]), min(times[name])
        dtype = name.split()[1]
        ref_name = next(n for n in names if n.startswith(f"gliner2 {dtype}"))
        share = flops / med / rates[dtype]
        print(f"| {name} | {med:.3f} | {best:.3f} | {len(texts) / med:.2f} | {counts[name]} | "
              f"{statistics.median(times[ref_name]) / med:.2f}x | {share:.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", nargs="+", default=None, help="default: float32, and bfloat16 where the CPU "
                                                                  "has AVX512-BF16 or AMX")
    parser.add_argument("--ref-batch", type=int, default=8, help="gliner2's batch_size (its default: 8)")
    parser.add_argument("--tiny", action="store_true", help="a test-sized model (smoke runs)")
    parser.add_argument("--per-text", action="store_true", help="also ours with one text per call (no packing "
                                                                "across texts): how the gain splits")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
