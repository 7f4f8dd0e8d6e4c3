"""Taxonomy classification: accuracy on the example product set, and latency against a 5,000-node taxonomy.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_taxonomy.py [--rounds 3]

Accuracy (examples/taxonomy: products.txt, titles.tsv) with the default model (all-MiniLM-L6-v2):
- `flat, path only`: cosine between the title and every leaf's full path (the baseline the walk must not lose to)
- `flat (default)`: the shipped flat scoring (path and leaf-name similarity mixed, tools.classify.PATH_WEIGHT)
- `beam 3`: the level-wise walk with the embedding scorer
- `mean-over-levels walk`: the walk classify shipped before (final paths ranked by their mean level score)
Latency: one title against a 5,000-node taxonomy (the example taxonomy with each leaf split by 16 qualifiers),
cold (label vectors not cached: the first call embeds every node, once) and warm (p50/p90 over repeated calls),
rounds alternating flat, beam and a bare one-title embed (the forward pass every call pays; the difference is
what the taxonomy costs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from pathlib import Path

import torch

from engine.catalog import Catalog
from engine.engine import Engine
from engine.pool import PoolConfig
from engine.scheduler import SchedulerConfig
from tools.classify import classify
from tools.context import Limits, ToolContext
from tools.taxonomy import TaxonomyStore, load_taxonomy_file, parse_taxonomy

DATA = Path(__file__).resolve().parent.parent / "examples" / "taxonomy"
QUALIFIERS = ["Budget", "Premium", "Refurbished", "Kids'", "Professional", "Travel", "Eco-Friendly", "Vintage",
              "Compact", "Large", "Wireless", "Bundle", "Accessory Kit", "Gift Set", "Replacement Parts", "Used"]


def titles() -> list[tuple[str, tuple[str, ...]]]:
    rows = [line.rstrip("\n").split("\t") for line in (DATA / "titles.tsv").read_text().splitlines()
            if line and not line.startswith("#")]
    return [(title, tuple(p.strip() for p in path.split(">"))) for title, path in rows]


def accuracy(ranked: list[list[tuple[str, ...]]], gold: list[tuple[str, ...]]) -> tuple[float, float]:
    at1 = sum(r[:1] == [g] for r, g in zip(ranked, gold)) / len(gold)
    at3 = sum(g in r[:3] for r, g in zip(ranked, gold)) / len(gold)
    return at1, at3


async def accuracy_table(ctx: ToolContext) -> None:
    data = titles()
    texts, gold = [t for t, _ in data], [g for _, g in data]
    tree = load_taxonomy_file(DATA / "products.txt")
    ctx.taxonomies.registered["products"] = tree
    print(f"taxonomy: {len(tree.nodes)} nodes, {len(tree.leaves)} leaves, depth {tree.depth}; {len(texts)} titles")
    rows = {}
    out = await classify(ctx, texts, taxonomy="products", top_k=3, search="flat")
    rows["flat (default: path + leaf name)"] = [[tuple(s.path) for s in r] for r in out.results]
    out = await classify(ctx, texts, taxonomy="products", top_k=3, search="beam", beam=3)
    rows["beam 3 (embedding scorer)"] = [[tuple(s.path) for s in r] for r in out.results]
    out = await classify(ctx, texts, taxonomy="products", top_k=3, search="beam", beam=10)
    rows["beam 10 (embedding scorer)"] = [[tuple(s.path) for s in r] for r in out.results]
    # Baselines computed from the same vectors: path-only flat, and the previous mean-over-levels walk.
    model = ctx.defaults.embed_model
    text_vecs = (await ctx.engine.embed(model, texts, normalize=True)).vectors
    node_vecs = (await ctx.engine.embed(model, [n.text for n in tree.nodes], normalize=True)).vectors
    sims = text_vecs @ node_vecs.T
    leaf_idx = torch.tensor([tree.nodes.index(n) for n in tree.leaves])
    top = torch.topk(sims[:, leaf_idx], 3, dim=1).indices.tolist()
    rows["flat, path only (baseline)"] = [[tree.leaves[i].path for i in r] for r in top]
    rows["mean-over-levels walk (before)"] = [previous_walk(tree, row) for row in sims.tolist()]
    print("| method | accuracy@1 | accuracy@3 |\n|---|---|---|")
    for name, ranked in rows.items():
        a1, a3 = accuracy(ranked, gold)
        print(f"| {name} | {a1:.1%} | {a3:.1%} |")


def previous_walk(tree, row: list[float], beam: int = 3) -> list[tuple[str, ...]]:
    """The walk classify shipped before: beam 3, final paths ranked by the mean of their level scores."""
    sim = {n.path: s for n, s in zip(tree.nodes, row)}
    frontier = [(tree.root, [])]
    finished = []
    while frontier:
        cands = []
        for node, scores in frontier:
            if not node.children and node.path:
                finished.append((node, sum(scores) / len(scores)))
                continue
            cands.extend((c, scores + [sim[c.path]]) for c in node.children)
        cands.sort(key=lambda c: sum(c[1]) / len(c[1]), reverse=True)
        frontier = cands[:beam]
    finished.sort(key=lambda f: f[1], reverse=True)
    return [n.path for n, _ in finished[:3]]


def big_taxonomy() -> list[str]:
    base = [line for line in (DATA / "products.txt").read_text().splitlines() if line and not line.startswith("#")]
    return [f"{p} > {q} {p.rsplit(' > ', 1)[-1]}" for p in base for q in QUALIFIERS]


async def latency(ctx: ToolContext, rounds: int, calls: int) -> None:
    paths = big_taxonomy()
    tree = parse_taxonomy(paths)
    ctx.taxonomies.registered["big"] = tree
    print(f"\nlatency taxonomy: {len(tree.nodes)} nodes, {len(tree.leaves)} leaves, depth {tree.depth}")
    title = "Sony WH-1000XM5 wireless noise cancelling headphones"
    model = ctx.defaults.embed_model
    started = time.perf_counter()  # cold: once (it embeds every node's path and name)
    await classify(ctx, title, taxonomy="big", search="flat")
    cold = time.perf_counter() - started
    warm: dict[str, list[float]] = {"flat": [], "beam": [], "embed one title (the forward alone)": []}
    for r in range(rounds):
        order = list(warm) if r % 2 == 0 else list(reversed(warm))
        for what in order:
            for i in range(calls):
                text = f"{title} #{r}.{i}"
                started = time.perf_counter()
                if what in ("flat", "beam"):
                    await classify(ctx, text, taxonomy="big", search=what)
                else:
                    await ctx.engine.embed(model, [text], kind="query", normalize=True)
                warm[what].append(time.perf_counter() - started)
    print("| | p50 | p90 |\n|---|---|---|")
    print(f"| cold, search=flat (embeds {2 * len(tree.nodes)} label texts) | {cold:.1f} s | |")
    for what, xs in warm.items():
        xs = sorted(xs)
        name = what if what.startswith("embed") else f"warm, search={what}"
        print(f"| {name} | {xs[len(xs) // 2] * 1e3:.1f} ms | {xs[int(len(xs) * 0.9)] * 1e3:.1f} ms |")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    print(f"cpu: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    engine = Engine(Catalog.default(), PoolConfig(budget_bytes=4 << 30, host_budget_bytes=0),
                    SchedulerConfig(request_timeout_s=600))  # a cold 5,000-node taxonomy on a busy 2-core machine
    await engine.start(["all-MiniLM-L6-v2"], serving=True)
    ctx = ToolContext(engine, limits=Limits(max_texts=1000), taxonomies=TaxonomyStore())
    try:
        await accuracy_table(ctx)
        await latency(ctx, args.rounds, args.calls)
    finally:
        await engine.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
