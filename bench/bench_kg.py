"""Knowledge-graph building and navigation, with the default models (spaCy en_core_web_sm, MiniLM).

    python bench/bench_kg.py [--docs 500] [--rounds 1]

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
    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([SIE, "serve", "--transport", "http", "--port", str(self.port), "--data-dir",
                                      str(data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
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


def navigation(url: str, graph: str, rng: random.Random, calls: int) -> dict[str, list[float]]:
    people = [f"{f} {last}" for f in FIRST for last in LAST]
    times: dict[str, list[float]] = {"graph_search": [], "graph_neighbors": [], "graph_path": [], "graph_subgraph": []}
    with httpx.Client(timeout=60) as client:
        for _ in range(calls):
            args = {"graph_search": {"graph": graph, "query": rng.choice(ORGS + PLACES)},
                    "graph_neighbors": {"graph": graph, "entity": rng.choice(ORGS), "depth": 2},
                    "graph_path": {"graph": graph, "source": rng.choice(people[:50]), "target": rng.choice(PLACES)},
                    "graph_subgraph": {"graph": graph, "entities": rng.sample(ORGS, 5)}}
            for tool, body in args.items():
                started = time.perf_counter()
                r = client.post(f"{url}/v1/tools/{tool}", json=body)
                times[tool].append(time.perf_counter() - started)
                if r.status_code not in (200, 400):  # 400: a sampled name not in the graph
                    raise RuntimeError(f"{tool}: {r.status_code} {r.text}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--nav-calls", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-kg-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.docs)
        size = sum(p.stat().st_size for p in corpus.iterdir())
        rows: list[tuple[str, int, float, int, int]] = []
        nav: dict[str, list[float]] = {}
        graph_stats = ""
        for r in range(args.rounds):
            out = work / f"out-in-{r}"
            wall, rss, text = run_measured([SIE, "kg", "build", str(corpus), "--out", str(out), "--batch", "128"])
            rows.append(("in-process", r, wall, rss, 0))
            graph_stats = text.strip().splitlines()[0]
            server = Server(work / f"data-{r}")
            try:
                out = work / f"out-srv-{r}"
                wall, rss, text = run_measured([SIE, "kg", "build", str(corpus), "--out", str(out), "--server",
                                                server.url, "--batch", "128"])
                graph = text.split("graph id on the server: ")[1].split()[0]
                for tool, ts in navigation(server.url, graph, random.Random(r), args.nav_calls).items():
                    nav.setdefault(tool, []).extend(ts)
                rows.append(("server", r, wall, rss, vm_hwm(server.proc.pid)))
            finally:
                server.stop()
        print(f"{args.docs} documents, {size / 1e6:.2f} MB of text; {graph_stats}\n")
        print("| mode | round | wall s | documents/min | builder peak RSS | server peak RSS |")
        print("|---|---|---|---|---|---|")
        for mode, r, wall, rss, srv in rows:
            print(f"| {mode} | {r} | {wall:.1f} | {args.docs / wall * 60:.0f} | {rss / 2**20:.0f} MiB | "
                  f"{f'{srv / 2**20:.0f} MiB' if srv else '—'} |")
        print("\n| tool (HTTP, on the server's graph) | calls | p50 ms | p90 ms |")
        print("|---|---|---|---|")
        for tool, ts in nav.items():
            ts = sorted(ts)
            print(f"| {tool} | {len(ts)} | {statistics.median(ts) * 1e3:.1f} | {ts[int(len(ts) * 0.9)] * 1e3:.1f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
