"""CPU per call of the HTTP and MCP layers alone: the app called in process, the engine answering at once.

    python bench/bench_layers.py [--calls 2000] [--rounds 3] [--texts 4]

On a 2-core server every millisecond the event loop spends on a call is taken from the forward pass
(bench_surface.py measures the effect under load). This isolates that millisecond: the real ASGI app
(FastAPI routes, the MCP single-call path, the SDK where it is used, serialization) is
called directly with a `POST /v1/tools/embed` or an MCP `tools/call` for `--texts` texts, while the
engine's `embed` is replaced by one returning fixed 384-d vectors, so no tokenization, scheduling or
forward pass is counted. Reports process CPU per call (best of `--rounds`, alternating paths) for:
HTTP, MCP 2025-era (no version header), MCP 2026-07-28, and MCP through the SDK's own per-request path
(the same call with a session id header, which the single-call path leaves to the SDK) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import torch
from bench_surface import JSON_HEADERS, MODERN_HEADERS, mcp_bodies

from engine.model import EmbeddingOutput
from sie_mcp.http_app import create_app
from sie_mcp.runtime import build_runtime
from sie_mcp.settings import Settings


def requests(texts: list[str]) -> dict[str, tuple[str, bytes, list[tuple[bytes, bytes]]]]:
    """The benchmark's requests, built as bench_surface.py builds what wrk sends."""
    def asgi(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        return [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    (call,), (modern,) = mcp_bodies([texts]), mcp_bodies([texts], modern=True)
    return {
        "HTTP POST /v1/tools/embed": ("/v1/tools/embed", json.dumps({"texts": texts}).encode(), asgi(JSON_HEADERS)),
        "MCP tools/call (2025-era)": ("/mcp", call.encode(), asgi(JSON_HEADERS)),
        "MCP tools/call (2026-07-28)": ("/mcp", modern.encode(), asgi(MODERN_HEADERS)),
        "MCP tools/call via the SDK's per-request path": ("/mcp", call.encode(),
                                                         asgi({**JSON_HEADERS, "Mcp-Session-Id": "bench"})),
    }


async def call(app, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8080"), (b"content-length", str(len(body)).encode()), *headers],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080), "state": {}}
    delivered = False

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    status = []

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"{path}: HTTP {status}")


async def main_async(args) -> None:
    settings = Settings(stateless_http=True)
    runtime = build_runtime(settings)
    vectors = torch.nn.functional.normalize(torch.randn(args.texts, 384, generator=torch.Generator().manual_seed(0)), dim=1)

    async def fixed_embed(model_id, texts, kind=None, normalize=None, dimensions=None):
        return EmbeddingOutput(vectors[:len(texts)].clone(), [12] * len(texts), [False] * len(texts))

    runtime.engine.embed = fixed_embed  # the layers only: no tokenization, scheduling or forward pass
    app = create_app(settings, runtime)
    texts = [f"A short text number {i} for the layers benchmark." for i in range(args.texts)]
    paths = requests(texts)
    best = dict.fromkeys(paths, float("inf"))
    async with app.router.lifespan_context(app):
        for request in paths.values():
            for _ in range(200):
                await call(app, *request)
        for _ in range(args.rounds):
            for name, request in paths.items():
                t0 = time.process_time()
                for _ in range(args.calls):
                    await call(app, *request)
                best[name] = min(best[name], (time.process_time() - t0) / args.calls * 1e3)
    print(f"## CPU per call of the layers, {args.texts} texts per call, engine answering at once "
          f"(best of {args.rounds} x {args.calls} calls)")
    print("| path | ms CPU per call |\n|---|---:|")
    for name, ms in best.items():
        print(f"| {name} | {ms:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--texts", type=int, default=4)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
