"""Load and overload against a real `sie-tools serve` (issue 17; figures in docs/reliability.md).

    python bench/bench_reliability.py [--calls 2500] [--clients 64] [--overload-clients 128] [--max-queue 8]

1. Load, twice: `--calls` mixed tool calls (embed, rerank, classify, extract_entities) from `--clients`
   concurrent clients, half over REST (`POST /v1/tools/*`) and half over MCP: first against a stateless
   server (MCP `tools/call` POSTs, JSON answers), then against a server with sessions (each client opens its
   own session and reads the SSE answers). Every answer is compared with the same call made alone first;
   errors counted; p50/p99 per tool; server RSS after warm-up (the calls alone, then 8 x clients calls
   concurrently), at each quarter of the measured calls and at the end (growth %), with `--malloc-arena-max` 2 (`--compare-arenas` also runs
   glibc's default arenas).
2. Overload, twice: `--overload-clients` clients (connections open, the model warm), each making
   `--overload-calls` calls of 8 x 2,000 characters against `--max-queue`; first clients that wait the
   429's `Retry-After` (with jitter) as an agent's retry loop does, then hostile ones that do not wait
   (`--hostile-calls` each).
   Every call answered 200 or 429 (+ Retry-After), time-to-reject p50/p99, connection resets, queue depth
   after. The overload client speaks HTTP/1.1 on raw asyncio streams (`RawHttpClient`): with httpx its own
   event loop lagged by over a second on these shared cores and that lag was measured as the server's.

`--server-args` adds `sie-tools serve` options to every server, for comparisons made in one sitting
(`--server-args=--no-gc-freeze`, `--server-args="--kernel-cache-entries 0"`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serve import serve  # noqa: E402  (the same server starter the tests use)

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "data" / "corpus.jsonl").read_text().splitlines()]
MCP_HEADERS = {"accept": "application/json, text/event-stream"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def calls(n: int) -> list[tuple[str, dict]]:
    out = []
    for i in range(n):
        texts = [CORPUS[(i * 3 + j) % len(CORPUS)][:400] for j in range(2)]
        tool = ("embed", "rerank", "classify", "extract_entities")[i % 4]
        args = {"embed": {"texts": texts}, "rerank": {"query": texts[0][:60], "documents": texts},
                "classify": {"texts": texts, "labels": ["science", "sports", "politics", "cooking"]},
                "extract_entities": {"texts": texts}}[tool]
        out.append((tool, args))
    return out


def stable(tool: str, result: dict) -> str:
    """What must be equal between a call under load and alone (the model id and all numbers)."""
    return json.dumps(result, sort_keys=True)


def max_diff(a: object, b: object) -> float:
    """The largest difference between two results' numbers (inf where their shapes differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return max([max_diff(a[k], b.get(k)) for k in a] or [0.0]) if a.keys() == b.keys() else float("inf")
    if isinstance(a, list) and isinstance(b, list):
        return max([max_diff(x, y) for x, y in zip(a, b)] or [0.0]) if len(a) == len(b) else float("inf")
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return abs(a - b)
    return 0.0 if a == b else float("inf")


async def open_session(http: httpx.AsyncClient, url: str) -> str:
    r = await http.post(f"{url}/mcp", headers=MCP_HEADERS, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    r.raise_for_status()
    sid = r.headers["mcp-session-id"]
    await http.post(f"{url}/mcp", headers={**MCP_HEADERS, "mcp-session-id": sid},
                    json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return sid


def mcp_result(r: httpx.Response) -> dict:
    """The JSON-RPC result of a tools/call answer: a JSON body, or the `data:` line of an SSE stream."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        for line in r.text.splitlines():
            if line.startswith("data:") and '"result"' in line:
                return json.loads(line[5:])["result"]
        raise ValueError("no result event")
    return r.json()["result"]


async def load(url: str, n_calls: int, clients: int, pid: int, sessions: bool) -> dict:
    work = calls(256)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients + 8)) as http:
        alone, alone_json = {}, {}
        for i, (tool, args) in enumerate(work):
            alone_json[i] = (await http.post(f"{url}/v1/tools/{tool}", json=args)).json()
            alone[i] = stable(tool, alone_json[i])
        session_ids = [await open_session(http, url) for _ in range(clients)] if sessions else []
        latencies: dict[str, list[float]] = {t: [] for t in ("embed", "rerank", "classify", "extract_entities")}
        errors, mismatches, done = 0, 0, 0
        differ: dict[str, list[float]] = {}  # tool -> largest difference of each mismatching answer

        async def client(c: int, first: int, last: int, record: bool) -> None:
            nonlocal errors, mismatches, done
            k = first + c
            while k < last:
                i = k % len(work)
                tool, args = work[i]
                t0 = time.perf_counter()
                try:
                    if k % 2:  # MCP: stateless (JSON answer) or in this client's session (SSE answer)
                        headers = {**MCP_HEADERS, **({"mcp-session-id": session_ids[c]} if sessions else {})}
                        r = await http.post(f"{url}/mcp", headers=headers, json={
                            "jsonrpc": "2.0", "id": k, "method": "tools/call", "params": {"name": tool, "arguments": args}})
                        body = mcp_result(r)
                        ok, result = not body["isError"], body.get("structuredContent")
                    else:
                        r = await http.post(f"{url}/v1/tools/{tool}", json=args)
                        ok, result = r.status_code == 200, r.json()
                except (httpx.TransportError, KeyError, ValueError):
                    ok, result = False, None
                if record:
                    latencies[tool].append(time.perf_counter() - t0)
                    if not ok:
                        errors += 1
                    elif stable(tool, result) != alone[i]:
                        mismatches += 1
                        differ.setdefault(tool, []).append(max_diff(alone_json[i], result))
                    done += 1
                k += clients

        warm_calls = 8 * clients  # warm-up under concurrency: the load's batch shapes reach the allocator first
        await asyncio.gather(*(client(c, 0, warm_calls, False) for c in range(clients)))
        rss_warm = rss_mb(pid)
        rss_by_quarter: list[float] = []  # RSS as each quarter of the measured calls completes

        async def sample_rss() -> None:
            while len(rss_by_quarter) < 3:
                if done >= (len(rss_by_quarter) + 1) * n_calls / 4:
                    rss_by_quarter.append(rss_mb(pid))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        t_start = time.perf_counter()
        await asyncio.gather(*(client(c, warm_calls, warm_calls + n_calls, True) for c in range(clients)))
        wall = time.perf_counter() - t_start
        sampler.cancel()
        rss_end = rss_mb(pid)
    return {"calls": done, "calls_per_s": done / wall, "errors": errors, "mismatches": mismatches,
            "mismatch_max_diff": {t: (len(v), max(v)) for t, v in differ.items()},
            "rss_warm_mb": rss_warm, "rss_quarters_mb": rss_by_quarter, "rss_end_mb": rss_end,
            "growth_pct": (rss_end / rss_warm - 1) * 100,
            "latency_ms": {t: (pct(v, 0.5) * 1e3, pct(v, 0.99) * 1e3, pct(v, 0.99) / pct(v, 0.5))
                           for t, v in latencies.items()}}


class RawHttpClient:
    """One keep-alive HTTP/1.1 connection driven with asyncio streams: a request costs the load generator
    tens of microseconds, against about a millisecond through httpx, so that on a machine whose cores
    the server shares, the time measured is the server's and not the client's own event loop (with
    httpx and 128 clients, that loop lagged by over a second here)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, dict[str, str]]:
        """Send one prepared request; the status and headers of its answer (the body is read and dropped).
        Raises ConnectionError (a reset, or the server closing mid-answer)."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
        return status, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def http_request(authority: str, path: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload


async def overload(url: str, clients: int, per_client: int, honour_retry_after: bool) -> dict:
    """`clients` clients making `per_client` calls each, back to back. A polite client (an agent's retry
    loop) waits the 429's `Retry-After` (plus up to 50 % jitter) before its next call; a hostile one does
    not wait at all, so the offered load is whatever the event loop can take."""
    rejected, accepted, resets, no_hint = [], [], 0, 0
    authority = url.split("//", 1)[1]  # host:port
    host, port = authority.split(":")
    request = http_request(authority, "/v1/tools/embed", {"texts": [" ".join(CORPUS[:3])[:2000]] * 8})
    rng = random.Random(0)
    healthz = f"GET /healthz HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
    for _ in range(3):  # warm-up: the calls alone (first-call work is not overload)
        warm = RawHttpClient(host, int(port))
        await warm.post(request)
        warm.close()
    conns = [RawHttpClient(host, int(port)) for _ in range(clients)]
    for conn in conns:  # every client's connection open before the burst (connecting is not rejecting)
        await conn.post(healthz)

    async def client(conn: RawHttpClient) -> None:
        nonlocal resets, no_hint
        try:
            for _ in range(per_client):
                t0 = time.perf_counter()
                try:
                    status, headers = await conn.post(request)
                except (ConnectionError, asyncio.IncompleteReadError):
                    resets += 1
                    conn.close()
                    conn = RawHttpClient(host, int(port))
                    continue
                (accepted if status == 200 else rejected).append(time.perf_counter() - t0)
                no_hint += status == 429 and "retry-after" not in headers
                if honour_retry_after and status == 429:
                    await asyncio.sleep(float(headers.get("retry-after", 1)) * (1 + 0.5 * rng.random()))
        finally:
            conn.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(client(conn) for conn in conns))
    wall = time.perf_counter() - t_start
    return {"accepted": len(accepted), "rejected": len(rejected), "resets": resets, "without_retry_after": no_hint,
            "offered_calls_per_s": (len(accepted) + len(rejected)) / wall, "accepted_calls_per_s": len(accepted) / wall,
            "reject_ms": (pct(rejected, 0.5) * 1e3, pct(rejected, 0.99) * 1e3),
            "accept_ms": (pct(accepted, 0.5) * 1e3, pct(accepted, 0.99) * 1e3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2500, help="per load run (two runs: stateless, sessions)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--overload-clients", type=int, default=128)
    ap.add_argument("--overload-calls", type=int, default=20, help="per overload client honouring Retry-After")
    ap.add_argument("--hostile-calls", type=int, default=100, help="per overload client ignoring it (long enough "
                    "for the garbage collector's full collections to fall inside the run)")
    ap.add_argument("--max-queue", type=int, default=8)
    ap.add_argument("--compare-arenas", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-overload", action="store_true")
    ap.add_argument("--modes", default="stateless,sessions", help="load runs: stateless, sessions or both")
    ap.add_argument("--catalog", type=Path, default=None, help="default: the bundled catalog")
    ap.add_argument("--server-args", default="", help="more `sie-tools serve` options for every server, e.g. "
                    "--server-args=--no-gc-freeze (split on spaces)")
    args = ap.parse_args()
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    catalog = args.catalog or Path(__file__).resolve().parent.parent / "engine" / "catalog.yaml"
    # The bundled catalog's default NER model (spaCy, offline); tests/serve.py would otherwise pick tiny-ner.
    ner = {"SIE_DEFAULT_NER_MODEL": os.environ.get("SIE_DEFAULT_NER_MODEL", "en_core_web_sm")}
    extra = args.server_args.split()
    modes = [m for m in ("stateless", "sessions") if m in args.modes.split(",")]
    runs = [] if args.skip_load else [(2, m == "sessions") for m in modes] + ([(0, False)] if args.compare_arenas else [])
    for arenas, sessions in runs:
        mode = ["--max-client-sessions", str(2 * args.clients)] if sessions else ["--stateless-http"]
        with serve(catalog, logs, *mode, *extra, "--max-queue", "4096", "--malloc-arena-max", str(arenas),
                   "--log-level", "warning", "--preload", "all-MiniLM-L6-v2", "--preload", ner["SIE_DEFAULT_NER_MODEL"],
                   env=ner) as s:
            result = asyncio.run(load(s.url, args.calls, args.clients, s.proc.pid, sessions))
        print(f"## load, MCP {'sessions' if sessions else 'stateless'}, malloc arenas {arenas or 'glibc default'}: "
              f"{json.dumps(result, indent=1)}", flush=True)
    for polite in () if args.skip_overload else (True, False):
        with serve(catalog, logs, *extra, "--max-queue", str(args.max_queue), "--log-level", "warning",
                   "--preload", "all-MiniLM-L6-v2", env=ner) as s:
            per_client = args.overload_calls if polite else args.hostile_calls
            result = asyncio.run(overload(s.url, args.overload_clients, per_client, polite))
            result["queue_depth_after"] = s.metric('sie_tool_queue_depth{model="_all"}')
        print(f"## overload, --max-queue {args.max_queue}, clients {'honouring' if polite else 'ignoring'} "
              f"Retry-After: {json.dumps(result, indent=1)}", flush=True)


if __name__ == "__main__":
    main()
