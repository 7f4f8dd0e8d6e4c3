"""Surface overhead and throughput: MCP (streamable HTTP) and HTTP vs the engine called directly.

    python bench/bench_surface.py [--calls 300] [--latency-s 5] [--duration 10] [--repeats 3] [--clients 1,8,64]

1. Per-call latency, one short text, sequential: engine direct (in this process), HTTP
   (POST /v1/tools/embed, keep-alive) and MCP (tools/call over streamable HTTP, as a 2025-era stateless
   POST and as a 2026-07-28 single-exchange POST) against real
   `sie-tools serve --transport http --stateless-http` processes: one with the default `--mcp-response
   auto` (a call without a progress token is answered with one JSON body) and one with `sse` (every
   call answered with an SSE stream). p50/p99, the overhead over direct, and the layers' own time: the
   mean call minus the mean time the server's engine spent on it (tokenise + queue + compute, from its
   /metrics), which leaves out the difference between the engine's speed in this process and in the
   server's (on 2 cores a second process's threads slow the other's kernels).
2. Throughput (texts/s) with 1, 8 and 64 concurrent clients, each call embedding 4 corpus texts, for
   the same paths: in-process coroutines for the engine, `wrk` (a C load generator, Debian package
   `wrk`) from a second process for HTTP and MCP (stateless, so each MCP tools/call is one POST). On a
   2-core machine the load generator shares the CPU with the server. Each path run is bracketed by
   engine-direct runs (D P D P … D, the paths' order rotating from round to round) and its ratio taken
   against the mean of the two; ratios are the median over rounds. Before the next run starts, the
   benchmark waits for the server to finish the calls wrk left in flight. CPU per text (server + wrk, or
   this process for direct) is a second, steadier view of what the layers add.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from urllib.parse import urlsplit

import httpx

CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"
SIE = str(Path(sys.executable).with_name("sie-tools"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def latency(call, n: int) -> list[float]:
    for _ in range(20):
        await call(["warm up"])
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await call([f"A short query number {i}."])
        out.append(time.perf_counter() - t0)
    return out


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def throughput(call, clients: int, texts: list[str], duration: float) -> tuple[float, float]:
    """In-process load (the engine-direct baseline): `clients` coroutines calling back to back.
    Returns (texts/s, CPU ms per text of this process)."""
    done = 0
    stop = time.perf_counter() + duration
    cpu0 = time.process_time()

    async def client(c: int) -> None:
        nonlocal done
        i = c
        while time.perf_counter() < stop:
            await call(calls_texts(texts, i))
            done += 4
            i += clients

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done / (time.perf_counter() - t0), (time.process_time() - cpu0) / done * 1e3


def calls_texts(texts: list[str], i: int) -> list[str]:
    return [texts[(i * 4 + j) % len(texts)] for j in range(4)]


WRK_SCRIPT = """
bodies = {%s}
headers = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, headers, bodies[counter %% #bodies + 1])
end
"""

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
# MCP 2026-07-28: each POST is one self-contained exchange; routing headers mirror the body.
MODERN_HEADERS = {**JSON_HEADERS, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                  "Mcp-Name": "embed"}


def wrk_script(bodies: list[str], headers: dict[str, str]) -> Path:
    script = Path(tempfile.mkdtemp()) / "load.lua"
    lua_headers = ", ".join(f'[{json.dumps(k)}] = {json.dumps(v)}' for k, v in headers.items())
    script.write_text(WRK_SCRIPT % (", ".join(json.dumps(b) for b in bodies), lua_headers))
    return script


def mcp_bodies(texts_per_call: list[list[str]], modern: bool = False) -> list[str]:
    """tools/call embed bodies; `modern` adds the 2026-07-28 per-request envelope."""
    out = []
    for i, batch in enumerate(texts_per_call):
        params: dict = {"name": "embed", "arguments": {"texts": batch}}
        if modern:
            params["_meta"] = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                               "io.modelcontextprotocol/clientCapabilities": {}}
        out.append(json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}))
    return out


def wrk_throughput(url: str, bodies: list[str], headers: dict[str, str], clients: int, duration: float,
                   server_pid: int) -> tuple[float, float]:
    """Load from a second process: wrk (C, cheap) keeps `clients` connections busy.
    Returns (texts/s, CPU ms per text of the server and wrk together)."""
    script = wrk_script(bodies, headers)
    cpu0 = process_cpu_seconds(server_pid) + children_cpu_seconds()
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{duration:.0f}s", "--timeout", "60s", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    cpu = process_cpu_seconds(server_pid) + children_cpu_seconds() - cpu0
    wait_idle(url)
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    texts = int(re.search(r"(\d+) requests in", out).group(1)) * 4
    return rps * 4, cpu / texts * 1e3


def wait_idle(url: str, timeout: float = 120.0) -> None:
    """Wait until the server has finished the calls wrk left in flight when it stopped (up to `clients`
    calls, about a second of work at 64 clients): otherwise that work runs during the next cell and is
    charged to it. Read from the server's `sie_tool_queue_depth` (queued or running work items)."""
    base = urlsplit(url)._replace(path="").geturl()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{base}/metrics").text
        if re.search(r'^sie_tool_queue_depth\{model="_all"\} 0\.0$', metrics, re.MULTILINE):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server at {base} still busy after {timeout:.0f} s")


def start_server(*extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([SIE, "serve", "--transport", "http", "--port", str(port), "--log-level", "warning",
                               "--max-queue", "4096", "--stateless-http", *extra], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return server, url


PHASES = ("tokenize", "queue", "compute")
PATH_NAMES = ("HTTP", "MCP (auto: JSON)", "MCP 2026-07-28", "MCP (SSE)")


def engine_seconds(url: str) -> tuple[float, float]:
    """(requests seen, seconds spent) by the server's engine so far, from its /metrics."""
    text = httpx.get(f"{url}/metrics").text
    total, count = 0.0, 0.0
    for phase in PHASES:
        for kind in ("sum", "count"):
            series = f'sie_request_phase_seconds_{kind}{{model="all-MiniLM-L6-v2",phase="{phase}"}}'
            m = re.search(re.escape(series) + r" ([\d.e+-]+)", text)
            value = float(m.group(1)) if m else 0.0
            if kind == "sum":
                total += value
            elif phase == "compute":
                count = value
    return count, total


def _wrk_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise RuntimeError(f"unexpected wrk figure {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk_latency(url: str, bodies: list[str], headers: dict[str, str],
                duration: float) -> tuple[float, float, float, int]:
    """One connection, calls back to back, from wrk (a C client: next to no client-side time).
    Returns (p50 ms, p99 ms, mean ms, calls)."""
    script = wrk_script(bodies, headers)
    out = subprocess.run(["wrk", "-t1", "-c1", f"-d{duration:.0f}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors:\n{out}")
    if "50%" not in out:
        raise RuntimeError(f"too few calls to report:\n{out}")
    mean = _wrk_ms(re.search(r"^\s+Latency\s+(\S+)", out, re.MULTILINE).group(1))
    p50 = _wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))
    p99 = _wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))
    calls = int(re.search(r"(\d+) requests in", out).group(1))
    return p50, p99, mean, calls


async def latency_table(args, direct, url: str, sse_url: str) -> None:
    from mcp import Client

    print(f"## per-call latency, one short text, sequential calls ({args.calls} in process, "
          f"{args.latency_s:.0f} s of calls from wrk)")
    print("| path | p50 ms | p99 ms | p50 overhead vs direct | layers' own time (mean call - server engine) |")
    print("|---|---:|---:|---:|---:|")
    lat = await latency(direct, args.calls)
    base = pct(lat, 0.5) * 1e3
    print(f"| engine direct (in process) | {base:.2f} | {pct(lat, 0.99) * 1e3:.2f} | — | — |", flush=True)
    short = [[f"A short query number {i}."] for i in range(256)]
    for name, target, bodies, headers, server_url in (
            ("HTTP POST /v1/tools/embed (wrk)", f"{url}/v1/tools/embed", [json.dumps({"texts": t}) for t in short],
             JSON_HEADERS, url),
            ("MCP tools/call, JSON answer (auto; wrk)", f"{url}/mcp", mcp_bodies(short), JSON_HEADERS, url),
            ("MCP 2026-07-28 tools/call, JSON answer (wrk)", f"{url}/mcp", mcp_bodies(short, modern=True),
             MODERN_HEADERS, url),
            ("MCP tools/call, SSE answer (wrk)", f"{sse_url}/mcp", mcp_bodies(short), JSON_HEADERS, sse_url)):
        try:
            wrk_latency(target, bodies, headers, 2)  # warm-up (its figures are not used)
        except RuntimeError:
            pass  # a warm-up that completed too few calls to report percentiles
        before = engine_seconds(server_url)
        p50, p99, mean, _ = wrk_latency(target, bodies, headers, args.latency_s)
        count, seconds = (a - b for a, b in zip(engine_seconds(server_url), before, strict=True))
        own = mean - seconds / max(count, 1) * 1e3
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 - base:+.2f} ms | {own:.2f} ms |", flush=True)
    async with Client(f"{url}/mcp") as mcp_client:
        async def via_mcp(batch):
            result = await mcp_client.call_tool("embed", {"texts": batch})
            assert not result.is_error

        lat = await latency(via_mcp, args.calls)
    p50 = pct(lat, 0.5) * 1e3
    print(f"| MCP tools/call, official Python SDK client (auto: JSON) | {p50:.2f} | {pct(lat, 0.99) * 1e3:.2f} "
          f"| {p50 - base:+.2f} ms | — |", flush=True)


async def main_async(args) -> None:
    from sie_mcp.runtime import build_runtime
    from sie_mcp.settings import Settings

    texts = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    server, url = start_server()
    sse_server, sse_url = start_server("--mcp-response", "sse")
    try:
        runtime = build_runtime(Settings(max_queue=4096))
        await runtime.engine.start(["all-MiniLM-L6-v2"])

        async def direct(batch):
            await runtime.engine.embed("all-MiniLM-L6-v2", batch)

        if not args.skip_latency:
            await latency_table(args, direct, url, sse_url)
        if not args.skip_throughput:
            batches = [calls_texts(texts, i) for i in range(256)]
            paths = ((f"{url}/v1/tools/embed", [json.dumps({"texts": b}) for b in batches], JSON_HEADERS, server),
                     (f"{url}/mcp", mcp_bodies(batches), JSON_HEADERS, server),
                     (f"{url}/mcp", mcp_bodies(batches, modern=True), MODERN_HEADERS, server),
                     (f"{sse_url}/mcp", mcp_bodies(batches), JSON_HEADERS, sse_server))
            rates, cpus, ratios_by_clients = {}, {}, {}
            for clients in args.clients:
                # Each path run is bracketed by engine-direct runs (D P D P ... D) and its ratio taken against
                # the mean of the two: this shared machine has slow and quick spells of tens of seconds, and a
                # ratio is only as good as the pairing. The paths' order rotates from round to round, so no
                # path always comes first or last. Ratios: the median over rounds.
                runs: list[list[tuple[float, float]]] = [[] for _ in range(1 + len(paths))]
                ratios: list[list[float]] = [[] for _ in paths]
                for r in range(args.repeats):
                    before = await throughput(direct, clients, texts, args.duration)
                    runs[0].append(before)
                    for k in ((r + j) % len(paths) for j in range(len(paths))):
                        target, bodies, headers, proc = paths[k]
                        run = wrk_throughput(target, bodies, headers, clients, args.duration, proc.pid)
                        after = await throughput(direct, clients, texts, args.duration)
                        runs[k + 1].append(run)
                        runs[0].append(after)
                        ratios[k].append(run[0] / ((before[0] + after[0]) / 2))
                        print(f"[{clients} clients, round {r + 1}/{args.repeats}] {PATH_NAMES[k]}: {run[0]:.0f} "
                              f"texts/s, direct around it {before[0]:.0f} / {after[0]:.0f}", file=sys.stderr,
                              flush=True)
                        before = after
                rates[clients] = [max(r for r, _ in path) for path in runs]
                ratios_by_clients[clients] = [median(path_ratios) for path_ratios in ratios]
                cpus[clients] = [median([c for _, c in path]) for path in runs]
            columns = "| clients | engine direct | HTTP | MCP (auto: JSON) | MCP 2026-07-28 | MCP (SSE) "
            ratio_columns = "| HTTP / direct | MCP / direct | MCP 2026-07-28 / direct | MCP SSE / direct |"
            print(f"\n## throughput, 4 texts per call, {args.repeats} rounds x {args.duration:.0f} s per cell; texts/s: "
                  "best round; ratios: median over rounds of path / mean of the direct runs just before and after it; "
                  "HTTP and MCP "
                  "driven by wrk from a second process")
            print(columns + ratio_columns)
            print("|---:" * 10 + "|")
            for clients, best in rates.items():
                print(f"| {clients} | " + " | ".join(f"{v:,.0f}" for v in best) + " | "
                      + " | ".join(f"{v:.0%}" for v in ratios_by_clients[clients]) + " |")
            print("\n## CPU per text (ms; median of the rounds): the benchmark process for direct, the server "
                  "process + wrk for the others; ratio = direct / path (100 % = no CPU added by the layers)")
            print(columns + ratio_columns)
            print("|---:" * 10 + "|")
            for clients, cpu in cpus.items():
                print(f"| {clients} | " + " | ".join(f"{v:.2f}" for v in cpu) + " | "
                      + " | ".join(f"{cpu[0] / v:.0%}" for v in cpu[1:]) + " |", flush=True)
        await runtime.engine.shutdown()
    finally:
        for proc in (server, sse_server):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--latency-s", type=float, default=5.0, help="seconds of sequential calls per wrk latency row")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3, help="throughput: N interleaved rounds")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--clients", type=lambda s: [int(c) for c in s.split(",")], default=[1, 8, 64],
                    help="throughput: comma-separated concurrency levels")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
