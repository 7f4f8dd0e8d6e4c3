"""Knowledge-graph building and navigation, with the default models (spaCy en_core_web_sm, MiniLM).

    python bench/bench_kg.py [--docs 500] [--rounds 1] [--news PATH] [--kg-args "--entity-model M --labels a b"]
                             [--postgres] [--add-one 3000]

`--news PATH` builds gensim's lee_background.cor (one document per line; the first `--docs`) instead of the
generated corpus; `--kg-args` are passed to `kg build` (e.g. a GLiNER model and its labels); `--postgres` starts a
throwaway PostgreSQL (tests/pg_server.py) and runs the server round again on it (`--graph-store`), so
navigation is measured on SQLite and on PostgreSQL; `--add-one N` measures, in process with warm models, adding
one document to a graph of about N entities against adding it to a new graph (interleaved, median of
`--add-one-rounds`), on SQLite (and on PostgreSQL with `--postgres`).

Generates `--docs` documents of three short paragraphs each (people, organisations, places and the facts
between them, from fixed name pools and a seed: the same corpus on every run), then per round, alternating:
  in-process: `sie-tools kg build DIR --out OUT` (process start, model loads and the exports included);
  server:     a running `sie-tools serve --transport http` (models preloaded by a warm-up call), and
              `sie-tools kg build DIR --out OUT --server URL` against it (batches over MCP, the graph read
              back as a resource, exports written by the client).
Reports documents per minute (wall time of the build command), the peak RSS of the builder process
(`wait4`'s ru_maxrss) and of the server (VmHWM), and p50/p90 latency of each navigation tool over HTTP
(POST /v1/tools/…) on the server's graph. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SIE = str(Path(sys.executable).with_name("sie-tools"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
FIRST = ["Alice", "Bruno", "Chen", "Dana", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena",
         "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yusuf"]
LAST = ["Schmidt", "Okafor", "Tanaka", "Rossi", "Novak", "Haddad", "Lindqvist", "Moreau", "Kowalski", "Silva",
        "Fischer", "Nakamura", "Petrov", "Jensen", "Duarte", "Mensah"]
ORGS = ["Northwind Systems", "Bluefin Analytics", "Helios Energy", "Crescent Bank", "Orbital Dynamics",
        "Maple Pharmaceuticals", "Quantum Harbor", "Redwood Logistics", "Silverline Media", "Tidewater Foods",
        "Vertex Robotics", "Granite Insurance", "Aurora Airlines", "Summit Telecom", "Ironclad Security"]
PLACES = ["London", "Berlin", "Madrid", "Toronto", "Chicago", "Singapore", "Sydney", "Lagos", "Mumbai", "Seoul",
          "Stockholm", "Lisbon", "Denver", "Nairobi", "Osaka", "Zurich", "Boston", "Dublin"]


def make_corpus(folder: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    people = [f"{f} {last}" for f in FIRST for last in LAST]
    for i in range(n):
        p, q = rng.sample(people, 2)
        a, b = rng.sample(ORGS, 2)
        x, y = rng.sample(PLACES, 2)
        year = rng.randint(1990, 2024)
        paragraphs = [
            f"{p} leads {a}. {a} is based in {x}. In {year}, {a} acquired {b} after months of talks.",
            f"{q} joined {b} in {y}. {q} worked with {p} on a new product. Analysts in {x} praised the deal, "
            f"and {b} opened an office in {y}.",
            f"{p.split()[0]} told reporters that {a} would hire engineers in {y}. {q} moved to {x} the next year.",
        ]
        (folder / f"doc{i:04d}.txt").write_text("\n\n".join(paragraphs) + "\n")


def news_corpus(folder: Path, source: Path, n: int) -> None:
    lines = [x.strip() for x in source.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    for i, line in enumerate(lines[:n]):
        (folder / f"lee{i:04d}.txt").write_text(line + "\n")


SYLLABLES = ["ka", "lo", "mi", "ra", "ten", "vo", "shi", "dan", "pel", "tor", "bre", "nu", "gal", "fen", "sor", "wy"]


def unique_docs(n: int, seed: int = 1) -> list[dict]:
    """Documents naming new people, organisations and places (about six new entities each), with facts."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()

    docs = []
    for i in range(n):
        p, q = f"{rng.choice(FIRST)} {word()}", f"{rng.choice(FIRST)} {word()}"
        a, b = f"{word()} {rng.choice(['Systems', 'Bank', 'Labs', 'Energy', 'Media'])}", f"{word()} Group"
        x = word() + "ville"
        docs.append({"id": f"u{seed}-{i}", "text": f"{p} leads {a}. {a} is based in {x}. {a} acquired {b}. "
                                                     f"{q} joined {b} as chief economist. {p} met {q} in {x}."})
    return docs


async def add_one(label: str, store_location: str, target: int, rounds: int) -> list[tuple[str, float, float, int]]:
    """(store, median s to add one document to a new graph, to a graph of ~target entities, its entities)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from engine.catalog import Catalog
    from engine.engine import Engine
    from ontology.store import GraphStore
    from tools.context import ToolContext
    from tools.ontology import GraphService, build_ontology

    engine = Engine(Catalog.default())
    await engine.start()
    store = GraphStore(store_location, max_graphs=10_000)
    try:
        ctx = ToolContext(engine, graphs=GraphService(store))
        await build_ontology(ctx, documents=unique_docs(2, seed=99), graph="warm")  # models loaded
        docs = unique_docs(target // 6 + 1)
        entities = 0
        for b in range(0, len(docs), 64):
            entities = (await build_ontology(ctx, documents=docs[b:b + 64], graph="big")).nodes
        new_t, big_t = [], []
        for r, doc in enumerate(unique_docs(rounds, seed=7)):
            for graph in (("big", f"new{r}") if r % 2 else (f"new{r}", "big")):  # interleaved
                started = time.perf_counter()
                await build_ontology(ctx, documents=[{**doc, "id": f"{doc['id']}-{graph}"}], graph=graph)
                (big_t if graph == "big" else new_t).append(time.perf_counter() - started)
        return [(label, statistics.median(new_t), statistics.median(big_t), entities)]
    finally:
        store.close()
        await engine.shutdown()


def run_measured(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stdout) of one command."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        text, problems = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{text}\n{problems[-3000:]}")
    return wall, usage.ru_maxrss * 1024, text


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class Server:
    def __init__(self, data_dir: Path, extra: list[str] | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([SIE, "serve", "--transport", "http", "--port", str(self.port), "--data-dir",
                                      str(data_dir), *(extra or [])], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=ENV)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.3)
        # warm-up: load the parse model too, so the build measures building
        httpx.post(f"{self.url}/v1/tools/build_ontology", json={"texts": ["Ada Lovelace lived in London."],
                                                                "graph": "warmup"}, timeout=300).raise_for_status()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def navigation(url: str, graph: str, rng: random.Random, calls: int,
               names: tuple[list[str], list[str], list[str]] | None = None) -> dict[str, list[float]]:
    people = [f"{f} {last}" for f in FIRST for last in LAST]
    orgs, places = ORGS, PLACES
    if names is not None:
        people, orgs, places = names
    times: dict[str, list[float]] = {"graph_search": [], "graph_neighbors": [], "graph_path": [], "graph_subgraph": []}
    with httpx.Client(timeout=60) as client:
        for _ in range(calls):
            args = {"graph_search": {"graph": graph, "query": rng.choice(orgs + places)},
                    "graph_neighbors": {"graph": graph, "entity": rng.choice(orgs), "depth": 2},
                    "graph_path": {"graph": graph, "source": rng.choice(people[:50]), "target": rng.choice(places)},
                    "graph_subgraph": {"graph": graph, "entities": rng.sample(orgs, min(5, len(orgs)))}}
            for tool, body in args.items():
                started = time.perf_counter()
                r = client.post(f"{url}/v1/tools/{tool}", json=body)
                times[tool].append(time.perf_counter() - started)
                if r.status_code not in (200, 400, 404):  # a sampled name not in the graph
                    raise RuntimeError(f"{tool}: {r.status_code} {r.text}")
    return times


def names_of(out: Path) -> tuple[list[str], list[str], list[str]]:
    """People, organisations and places of a built graph (its graph.json): what navigation asks about."""
    import json

    data = json.loads((out / "graph.json").read_text())
    by: dict[str, list[tuple[int, str]]] = {"PERSON": [], "ORG": [], "GPE": []}
    for n in data["nodes"]:
        if n.get("kind") == "entity" and n["type"] in by:
            by[n["type"]].append((-n["mentions"], n["label"]))
    top = {t: [name for _, name in sorted(v)[:50]] or ["none"] for t, v in by.items()}
    return top["PERSON"], top["ORG"], top["GPE"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--nav-calls", type=int, default=50)
    parser.add_argument("--news", type=Path, default=None, help="lee_background.cor: real news instead")
    parser.add_argument("--kg-args", default="",
                        help="extra `kg build` arguments, e.g. '--entity-model M --labels a b'")
    parser.add_argument("--postgres", action="store_true", help="also run the server on a throwaway PostgreSQL")
    parser.add_argument("--add-one", type=int, default=0, help="entities of the graph one document is added to")
    parser.add_argument("--add-one-rounds", type=int, default=9)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-kg-"))
    pg = None
    try:
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.pg_server import PostgresServer

            pg = PostgresServer()
        corpus = work / "corpus"
        corpus.mkdir()
        if args.news:
            news_corpus(corpus, args.news, args.docs)
        else:
            make_corpus(corpus, args.docs)
        docs = len(list(corpus.iterdir()))
        size = sum(p.stat().st_size for p in corpus.iterdir())
        extra = args.kg_args.split()
        # `--model NAME=PATH` registers a model: the in-process build and the server need it, not the client
        registrations = [x for i, x in enumerate(extra) if x == "--model" or (i and extra[i - 1] == "--model")]
        client_args = [x for x in extra if x not in registrations]
        rows: list[tuple[str, int, float, int, int]] = []
        nav: dict[str, dict[str, list[float]]] = {}
        graph_stats = ""
        stores = [("sqlite", [])] + ([("postgresql", ["--graph-store", pg.database("benchnav")])] if pg else [])
        for r in range(args.rounds):
            out = work / f"out-in-{r}"
            wall, rss, text = run_measured([SIE, "kg", "build", str(corpus), "--out", str(out), "--batch", "128",
                                            *extra])
            rows.append(("in-process", r, wall, rss, 0))
            graph_stats = text.strip().splitlines()[0]
            names = names_of(out) if args.news else None
            for store, server_args in stores:
                server = Server(work / f"data-{r}-{store}", server_args + registrations)
                try:
                    out = work / f"out-srv-{r}-{store}"
                    wall, rss, text = run_measured([SIE, "kg", "build", str(corpus), "--out", str(out), "--server",
                                                    server.url, "--batch", "128", *client_args])
                    graph = text.split("graph id on the server: ")[1].split()[0]
                    for tool, ts in navigation(server.url, graph, random.Random(r), args.nav_calls, names).items():
                        nav.setdefault(store, {}).setdefault(tool, []).extend(ts)
                    rows.append((f"server ({store})", r, wall, rss, vm_hwm(server.proc.pid)))
                finally:
                    server.stop()
        print(f"{docs} documents, {size / 1e6:.2f} MB of text; {graph_stats}\n")
        print("| mode | round | wall s | documents/min | builder peak RSS | server peak RSS |")
        print("|---|---|---|---|---|---|")
        for mode, r, wall, rss, srv in rows:
            print(f"| {mode} | {r} | {wall:.1f} | {docs / wall * 60:.0f} | {rss / 2**20:.0f} MiB | "
                  f"{f'{srv / 2**20:.0f} MiB' if srv else '—'} |")
        print("\n| store | tool (HTTP, on the server's graph) | calls | p50 ms | p90 ms |")
        print("|---|---|---|---|---|")
        for store, tools in nav.items():
            for tool, ts in tools.items():
                ts = sorted(ts)
                print(f"| {store} | {tool} | {len(ts)} | {statistics.median(ts) * 1e3:.1f} | "
                      f"{ts[int(len(ts) * 0.9)] * 1e3:.1f} |")
        if args.add_one:
            import asyncio

            results = asyncio.run(add_one("sqlite", str(work / "addone"), args.add_one, args.add_one_rounds))
            if pg:
                results += asyncio.run(add_one("postgresql", pg.database("benchaddone"), args.add_one,
                                               args.add_one_rounds))
            print("\n| store | one document into a new graph, s | into a graph of N entities, s | N | ratio |")
            print("|---|---|---|---|---|")
            for store, new, big, n in results:
                print(f"| {store} | {new:.3f} | {big:.3f} | {n} | {big / new:.2f}× |")
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
