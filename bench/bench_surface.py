"""Surface overhead and throughput: MCP (streamable HTTP) and HTTP vs the engine called directly.

    python bench/bench_surface.py [--calls 300] [--duration 10]

1. Per-call latency, one short text, sequential: engine direct (in this process), HTTP
   (POST /v1/tools/embed, keep-alive) and MCP (tools/call over streamable HTTP) against a real
   `sie-mcp serve --transport http` process. p50/p99 and the overhead over direct.
2. Throughput (texts/s) with 1, 8 and 64 concurrent clients, each call embedding 4 corpus texts, for
   the same three paths: in-process coroutines for the engine, `wrk` (a C load generator, Debian
   package `wrk`) from a second process for HTTP and MCP (the server runs with --stateless-http so each
   MCP tools/call is one POST). On a 2-core machine the load generator shares the CPU with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"
SIE = str(Path(sys.executable).with_name("sie-mcp"))


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


async def throughput(call, clients: int, texts: list[str], duration: float) -> float:
    """In-process load (the engine-direct baseline): `clients` coroutines calling back to back."""
    done = 0
    stop = time.perf_counter() + duration

    async def client(c: int) -> None:
        nonlocal done
        i = c
        while time.perf_counter() < stop:
            await call(calls_texts(texts, i))
            done += 4
            i += clients

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done / (time.perf_counter() - t0)


def calls_texts(texts: list[str], i: int) -> list[str]:
    return [texts[(i * 4 + j) % len(texts)] for j in range(4)]


WRK_SCRIPT = """
bodies = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Accept"] = "application/json, text/event-stream"}, bodies[counter %% #bodies + 1])
end
"""


def wrk_throughput(url: str, bodies: list[str], clients: int, duration: float) -> float:
    """Load from a second process: wrk (C, cheap) keeps `clients` connections busy; texts/s."""
    script = Path(tempfile.mkdtemp()) / "load.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(b) for b in bodies))
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{duration:.0f}s", "--timeout", "60s", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rps * 4


async def main_async(args) -> None:
    from mcp import Client

    from sie_mcp.http_app import build_runtime
    from sie_mcp.settings import Settings

    texts = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    port = free_port()
    server = subprocess.Popen([SIE, "serve", "--transport", "http", "--port", str(port), "--log-level", "warning",
                               "--max-queue", "4096", "--stateless-http"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        runtime = build_runtime(Settings(max_queue=4096))
        await runtime.engine.start(["all-MiniLM-L6-v2"])

        async def direct(batch):
            await runtime.engine.embed("all-MiniLM-L6-v2", batch)

        http = httpx.AsyncClient(limits=httpx.Limits(max_connections=128, max_keepalive_connections=128), timeout=120)

        async def via_http(batch):
            r = await http.post(f"{url}/v1/tools/embed", json={"texts": batch})
            r.raise_for_status()

        rpc_id = 0

        async def via_mcp_raw(batch):
            """One JSON-RPC tools/call POST (what any MCP client sends), without the SDK client's own work
            (session objects, pydantic models, JSON-Schema validation of the result)."""
            nonlocal rpc_id
            rpc_id += 1
            r = await http.post(f"{url}/mcp", headers={"accept": "application/json, text/event-stream"},
                                json={"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
                                      "params": {"name": "embed", "arguments": {"texts": batch}}})
            r.raise_for_status()
            data = next(line[5:] for line in r.text.splitlines() if line.startswith("data:"))
            assert "structuredContent" in json.loads(data)["result"]

        async with Client(f"{url}/mcp") as mcp_client:
            async def via_mcp(batch):
                result = await mcp_client.call_tool("embed", {"texts": batch})
                assert not result.is_error

            print(f"## per-call latency, one short text, {args.calls} sequential calls")
            print("| path | p50 ms | p99 ms | p50 overhead vs direct |")
            print("|---|---:|---:|---:|")
            base = None
            paths = (("engine direct", direct), ("HTTP /v1/tools/embed", via_http),
                     ("MCP tools/call, raw JSON-RPC POST", via_mcp_raw), ("MCP tools/call, official SDK client", via_mcp))
            for name, call in paths:
                lat = await latency(call, args.calls)
                p50, p99 = pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3
                base = p50 if base is None else base
                print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 - base:+.2f} ms |", flush=True)

        if not args.skip_throughput:
            print(f"\n## throughput, 4 texts per call, {args.duration:.0f} s per cell (texts/s); HTTP and MCP "
                  "driven by wrk from a second process")
            print("| clients | engine direct | HTTP | MCP | HTTP / direct | MCP / direct |")
            print("|---:|---:|---:|---:|---:|---:|")
            http_bodies = [json.dumps({"texts": calls_texts(texts, i)}) for i in range(256)]
            mcp_bodies = [json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                      "params": {"name": "embed", "arguments": {"texts": calls_texts(texts, i)}}})
                          for i in range(256)]
            for clients in (1, 8, 64):
                d = await throughput(direct, clients, texts, args.duration)
                h = wrk_throughput(f"{url}/v1/tools/embed", http_bodies, clients, args.duration)
                m = wrk_throughput(f"{url}/mcp", mcp_bodies, clients, args.duration)
                print(f"| {clients} | {d:,.0f} | {h:,.0f} | {m:,.0f} | {h / d:.0%} | {m / d:.0%} |", flush=True)
        await http.aclose()
        await runtime.engine.shutdown()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--skip-throughput", action="store_true")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
