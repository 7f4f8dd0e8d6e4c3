"""Load and overload against a real `sie-mcp serve` (issue 17; figures in docs/reliability.md).

    python bench/bench_reliability.py [--calls 5000] [--clients 64] [--overload-clients 128] [--max-queue 8]

1. Load: `--calls` mixed tool calls (embed, rerank, classify, extract_entities) from `--clients` concurrent
   clients, alternating REST (`POST /v1/tools/*`) and stateless MCP (`tools/call`, JSON answers; MCP with
   sessions is not driven here yet). Every answer is compared with the same call made alone first; errors counted; p50/p99 per
   tool; server RSS after warm-up and at the end (growth %), with `--malloc-arena-max` as given
   (`--compare-arenas` runs the load twice, glibc's default arenas vs 2).
2. Overload: `--overload-clients` clients, each sending calls back to back, against `--max-queue`:
   every call answered 200 or 429 (+ Retry-After), time-to-reject p50/p99, transport errors (resets),
   queue depth after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


async def load(url: str, n_calls: int, clients: int, pid: int) -> dict:
    work = calls(256)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients + 8)) as http:
        alone = {}
        for i, (tool, args) in enumerate(work):
            alone[i] = stable(tool, (await http.post(f"{url}/v1/tools/{tool}", json=args)).json())
        rss_warm = rss_mb(pid)
        latencies: dict[str, list[float]] = {t: [] for t in ("embed", "rerank", "classify", "extract_entities")}
        errors, mismatches, done = 0, 0, 0
        t_start = time.perf_counter()

        async def client(c: int) -> None:
            nonlocal errors, mismatches, done
            k = c
            while k < n_calls:
                i = k % len(work)
                tool, args = work[i]
                t0 = time.perf_counter()
                try:
                    if k % 2:  # stateless MCP, JSON answer
                        r = await http.post(f"{url}/mcp", headers=MCP_HEADERS, json={
                            "jsonrpc": "2.0", "id": k, "method": "tools/call", "params": {"name": tool, "arguments": args}})
                        body = r.json()["result"]
                        ok, result = not body["isError"], body.get("structuredContent")
                    else:
                        r = await http.post(f"{url}/v1/tools/{tool}", json=args)
                        ok, result = r.status_code == 200, r.json()
                except (httpx.TransportError, KeyError, ValueError):
                    ok, result = False, None
                latencies[tool].append(time.perf_counter() - t0)
                if not ok:
                    errors += 1
                elif stable(tool, result) != alone[i]:
                    mismatches += 1
                done += 1
                k += clients

        await asyncio.gather(*(client(c) for c in range(clients)))
        wall = time.perf_counter() - t_start
    return {"calls": done, "calls_per_s": done / wall, "errors": errors, "mismatches": mismatches,
            "rss_warm_mb": rss_warm, "rss_end_mb": rss_mb(pid), "growth_pct": (rss_mb(pid) / rss_warm - 1) * 100,
            "latency_ms": {t: (pct(v, 0.5) * 1e3, pct(v, 0.99) * 1e3) for t, v in latencies.items()}}


async def overload(url: str, clients: int, per_client: int) -> dict:
    rejected, accepted, resets, no_hint = [], [], 0, 0
    body = {"texts": [" ".join(CORPUS[:3])[:2000]] * 8}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients + 8)) as http:
        async def client() -> None:
            nonlocal resets, no_hint
            for _ in range(per_client):
                t0 = time.perf_counter()
                try:
                    r = await http.post(f"{url}/v1/tools/embed", json=body)
                except httpx.TransportError:
                    resets += 1
                    continue
                (accepted if r.status_code == 200 else rejected).append(time.perf_counter() - t0)
                no_hint += r.status_code == 429 and "retry-after" not in r.headers

        await asyncio.gather(*(client() for _ in range(clients)))
    return {"accepted": len(accepted), "rejected": len(rejected), "resets": resets, "without_retry_after": no_hint,
            "reject_ms": (pct(rejected, 0.5) * 1e3, pct(rejected, 0.99) * 1e3),
            "accept_ms": (pct(accepted, 0.5) * 1e3, pct(accepted, 0.99) * 1e3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--overload-clients", type=int, default=128)
    ap.add_argument("--overload-calls", type=int, default=20, help="per overload client")
    ap.add_argument("--max-queue", type=int, default=8)
    ap.add_argument("--compare-arenas", action="store_true")
    ap.add_argument("--catalog", type=Path, default=None, help="default: the bundled catalog")
    args = ap.parse_args()
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    catalog = args.catalog or Path(__file__).resolve().parent.parent / "engine" / "catalog.yaml"
    ner = {"SIE_DEFAULT_NER_MODEL": os.environ.get("SIE_DEFAULT_NER_MODEL", "bert-base-NER")}
    for arenas in ((0, 2) if args.compare_arenas else (2,)):
        with serve(catalog, logs, "--stateless-http", "--max-queue", "4096", "--malloc-arena-max", str(arenas),
                   "--log-level", "warning", env=ner) as s:
            result = asyncio.run(load(s.url, args.calls, args.clients, s.proc.pid))
        print(f"## load, malloc arenas {arenas or 'glibc default'}: {json.dumps(result, indent=1)}", flush=True)
    with serve(catalog, logs, "--max-queue", str(args.max_queue), "--log-level", "warning", env=ner) as s:
        result = asyncio.run(overload(s.url, args.overload_clients, args.overload_calls))
        result["queue_depth_after"] = s.metric('sie_tool_queue_depth{model="_all"}')
    print(f"## overload, --max-queue {args.max_queue}: {json.dumps(result, indent=1)}", flush=True)


if __name__ == "__main__":
    main()
