"""Embedded vector databases compared for sie-mcp's collections: LanceDB, Chroma, Qdrant's local mode.

Each runs in its own virtual environment (so its install size is measured alone), in-process, persisted
under a temp dir, on the same random unit vectors with the same metadata:

    python3 -m venv /tmp/vdb/qdrant-client && /tmp/vdb/qdrant-client/bin/pip install qdrant-client
    python3 -m venv /tmp/vdb/chromadb && /tmp/vdb/chromadb/bin/pip install chromadb
    python3 -m venv /tmp/vdb/lancedb && /tmp/vdb/lancedb/bin/pip install lancedb
    python bench/bench_vectordb.py --n 20000 --venvs /tmp/vdb      # the driver: any python

Measured per database: install size (site-packages, less the same baseline of numpy/pip/setuptools),
insert time (batches of 1000, persisted), reopen time (a restart), top-10 query latency p50/p99 without
and with a metadata filter (`category == 3`, a tenth of the points). Rounds alternate the databases.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

WORKER = r'''
import json, shutil, sys, tempfile, time
import numpy as np

db, n, dim, queries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
vecs = rng.standard_normal((n, dim), dtype=np.float32)
vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
qs = rng.standard_normal((queries, dim), dtype=np.float32)
qs /= np.linalg.norm(qs, axis=1, keepdims=True)
root = tempfile.mkdtemp()
B = 1000


def timed(fn):
    t = time.perf_counter(); out = fn(); return time.perf_counter() - t, out


if db == "qdrant":
    from qdrant_client import QdrantClient, models
    def open_(): return QdrantClient(path=root)
    c = open_()
    c.create_collection("col", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
    def insert():
        for i in range(0, n, B):
            c.upsert("col", points=models.Batch(ids=list(range(i, min(n, i + B))), vectors=vecs[i:i + B].tolist(),
                     payloads=[{"category": j % 10, "doc": f"d{j}"} for j in range(i, min(n, i + B))]))
    flt = models.Filter(must=[models.FieldCondition(key="category", match=models.MatchValue(value=3))])
    def query(q, f): return c.query_points("col", query=q.tolist(), limit=10, query_filter=f).points
    def close(): c.close()
    def reopen():
        global c; c = open_(); return c.count("col").count
elif db == "chroma":
    import chromadb
    def open_(): return chromadb.PersistentClient(path=root)
    client = open_()
    c = client.create_collection("col", metadata={"hnsw:space": "cosine"})
    def insert():
        for i in range(0, n, B):
            ids = [str(j) for j in range(i, min(n, i + B))]
            c.add(ids=ids, embeddings=vecs[i:i + B], metadatas=[{"category": j % 10, "doc": f"d{j}"} for j in range(i, min(n, i + B))])
    flt = {"category": 3}
    def query(q, f): return c.query(query_embeddings=[q], n_results=10, where=f)
    def close(): pass
    def reopen():
        global client, c; client = open_(); c = client.get_collection("col"); return c.count()
else:
    import lancedb, pyarrow as pa
    def open_(): return lancedb.connect(root)
    conn = open_()
    schema = pa.schema([("id", pa.int64()), ("vector", pa.list_(pa.float32(), dim)), ("category", pa.int64()), ("doc", pa.string())])
    t = conn.create_table("col", schema=schema)
    def insert():
        for i in range(0, n, B):
            rows = range(i, min(n, i + B))
            t.add(pa.table({"id": list(rows), "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs[i:i + B].ravel()), dim),
                            "category": [j % 10 for j in rows], "doc": [f"d{j}" for j in rows]}))
        t.optimize()  # compact the fragments the batched adds made (what a server would do after indexing)
    flt = "category = 3"
    def query(q, f):
        s = t.search(q).metric("cosine").limit(10)
        return (s.where(f, prefilter=True) if f else s).to_list()
    def close(): pass
    def reopen():
        global conn, t; conn = open_(); t = conn.open_table("col"); return t.count_rows()

insert_s, _ = timed(insert)
close()
reopen_s, count = timed(reopen)
assert count == n, count
lat = {}
for name, f in (("plain", None), ("filter", flt)):
    query(qs[0], f)  # warm
    xs = []
    for q in qs:
        s, _ = timed(lambda: query(q, f)); xs.append(s * 1e3)
    xs.sort()
    lat[name] = (xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.99))])
print(json.dumps({"db": db, "n": n, "insert_s": insert_s, "reopen_s": reopen_s, "p50_ms": lat["plain"][0],
                  "p99_ms": lat["plain"][1], "filter_p50_ms": lat["filter"][0], "filter_p99_ms": lat["filter"][1]}))
shutil.rmtree(root, ignore_errors=True)
'''

VENVS = {"qdrant": "qdrant-client", "chroma": "chromadb", "lancedb": "lancedb"}
BASELINE = ("numpy", "numpy.libs", "pip", "setuptools", "_distutils_hack", "pkg_resources")


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def install_mb(venv: Path) -> float:
    total = 0
    for entry in site_packages(venv).iterdir():
        if entry.name in BASELINE or entry.name.startswith(("numpy-", "pip-", "setuptools-")):
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venvs", type=Path, default=Path("/tmp/vdb"))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--dbs", default="qdrant,chroma,lancedb")
    args = ap.parse_args()
    dbs = args.dbs.split(",")
    results: dict[str, list[dict]] = {db: [] for db in dbs}
    for r in range(args.rounds):
        for db in dbs[r % len(dbs):] + dbs[:r % len(dbs)]:  # rotate the order per round
            python = args.venvs / VENVS[db] / "bin" / "python"
            out = subprocess.run([str(python), "-c", WORKER, db, str(args.n), str(args.dim), str(args.queries)],
                                 capture_output=True, text=True, check=True)
            results[db].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(out.stdout.strip().splitlines()[-1], file=sys.stderr)
    print(f"| database | install MB | insert {args.n} s | reopen s | p50 / p99 ms | filtered p50 / p99 ms |")
    print("|---|---|---|---|---|---|")
    for db in dbs:
        best = min(results[db], key=lambda x: x["p50_ms"])
        print(f"| {db} | {install_mb(args.venvs / VENVS[db]):.0f} | {best['insert_s']:.1f} | {best['reopen_s']:.2f} "
              f"| {best['p50_ms']:.2f} / {best['p99_ms']:.2f} | {best['filter_p50_ms']:.2f} / {best['filter_p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
