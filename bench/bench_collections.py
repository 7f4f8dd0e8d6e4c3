"""Collections at scale: a 100k-chunk collection in the embedded Chroma store, built and searched through
sie-mcp's own code (tools/vector_store.py, tools/retrieval.py, the engine for query embeddings).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_collections.py --chunks 100000

Vectors: 1,000 real MiniLM embeddings of bench/data/corpus.jsonl, each repeated with small Gaussian noise
(sigma 0.05, re-normalised) to make `--chunks` distinct vectors that cluster as real corpora do (pure random
vectors make a nearest-neighbour index look worse than it is). Metadata: `category` (10 values, a filter
keeps a tenth) and `price`. Measured: index build time (upserts of 1,000 chunks, persisted), the process's
peak RSS, the reopen time of the store (a restart), and latency p50/p99 of (a) the database query alone,
(b) the whole `search` tool (query embedding + query + result), each without and with a filter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from sie_mcp.runtime import build_runtime
from sie_mcp.settings import Settings
from tools.retrieval import search
from tools.vector_store import ChunkRecord, VectorStore

REPO = Path(__file__).resolve().parent.parent
QUERIES = ["how do I reset my password", "battery life of the laptop", "refund for a late delivery",
           "best running shoes for trails", "what is the capital of France", "python list comprehension",
           "symptoms of the flu", "cheap flights to Lisbon", "how to cook rice", "stock market news today"]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


async def main(args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="sie-bench-"))
    settings = Settings(data_dir=data_dir, max_collection_chunks=args.chunks, preload=["all-MiniLM-L6-v2"],
                        request_timeout_s=600)
    runtime = build_runtime(settings)
    await runtime.engine.start(["all-MiniLM-L6-v2"], serving=True)
    try:
        texts = [json.loads(line) for line in (REPO / "bench/data/corpus.jsonl").read_text().splitlines()][:1000]
        base = (await runtime.engine.embed("all-MiniLM-L6-v2", texts, "document", True)).vectors.numpy()
        rng = np.random.default_rng(0)
        store: VectorStore = runtime.store  # type: ignore[assignment]
        t0 = time.perf_counter()
        for start in range(0, args.chunks, 1000):
            n = min(1000, args.chunks - start)
            idx = np.arange(start, start + n)
            vecs = base[idx % len(base)] + rng.normal(0, 0.05, (n, base.shape[1])).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            records = [ChunkRecord(f"d{i}", 0, 0, len(texts[i % len(texts)]), texts[i % len(texts)],
                                   {"category": f"c{i % 10}", "price": int(i % 500)}) for i in idx]
            await store.upsert("bench", "all-MiniLM-L6-v2", base.shape[1], records, vecs)
        build_s = time.perf_counter() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store.close()
        t0 = time.perf_counter()
        info = await store.info("bench")  # a new client on the same directory: what a restart pays
        reopen_s = time.perf_counter() - t0
        assert info.chunks == args.chunks, info
        ctx = runtime.tool_context()
        qv = (await runtime.engine.embed("all-MiniLM-L6-v2", QUERIES, "query", True)).vectors.numpy()
        out: dict = {"chunks": args.chunks, "build_s": build_s, "reopen_s": reopen_s, "peak_rss_mb": rss_mb}
        for name, flt in (("plain", None), ("filter", {"category": "c3"})):
            db, tool = [], []
            for r in range(args.rounds):  # interleave the two measurements round by round
                for i, q in enumerate(QUERIES):
                    t = time.perf_counter()
                    await store.query("bench", qv[i], 10, flt)
                    db.append((time.perf_counter() - t) * 1e3)
                    t = time.perf_counter()
                    await search(ctx, "bench", q, top_k=10, filter=flt)
                    tool.append((time.perf_counter() - t) * 1e3)
            out[name] = {"db_p50_ms": pct(db, 0.5), "db_p99_ms": pct(db, 0.99), "search_p50_ms": pct(tool, 0.5),
                         "search_p99_ms": pct(tool, 0.99), "n": len(db)}
        return out
    finally:
        await runtime.engine.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=20)
    print(json.dumps(asyncio.run(main(ap.parse_args())), indent=1))
