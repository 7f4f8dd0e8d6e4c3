"""How MCP over HTTP answers a POST: one JSON body, or an SSE stream.

The streamable-HTTP transport lets the server choose per POST (the client accepts both). An SSE stream is
what carries notifications about the request, progress above all; a JSON body is less work per call
(measured: 15–35 % more tool calls per second under 64 concurrent clients, docs/benchmarks.md), and
it is what most calls need. `--mcp-response`:

- `sse`: always a stream (the SDK's default);
- `json`: always one body (progress notifications are not sent);
- `auto` (default): in stateless mode, a body unless a request in the POST carries
  `params._meta.progressToken`, which then gets its stream and its progress; with sessions, streams
  (a session belongs to the transport that created it, so it cannot switch per request).

`auto` needs two SDK session managers over the same server, one per answer type, and this ASGI app in
front of them that reads the (size-limited) body once and replays it to the one it picks.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sie_mcp.mcp_single_call import SingleCallJson
from sie_mcp.settings import ResponseMode


def asks_for_progress(body: bytes) -> bool:
    """Whether any JSON-RPC request in a POST body carries a progress token (cheap check first)."""
    if b"progressToken" not in body:
        return False
    try:
        message: Any = json.loads(body)
    except ValueError:
        return False  # the SDK answers the parse error
    messages = message if isinstance(message, list) else [message]
    for m in messages:
        params = m.get("params") if isinstance(m, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        if isinstance(meta, dict) and "progressToken" in meta:
            return True
    return False


class ResponseModeRouter:
    """ASGI app for the MCP path: POSTs go to `json_app` unless they ask for progress; everything else
    (GET, DELETE, progress-carrying POSTs) goes to `sse_app` (to `json_app` when there is none: `json`
    mode). A POST bound for `json_app` is first offered to `single_call` (one stateless `tools/call`,
    sie_mcp/mcp_single_call.py), which answers it directly or declines."""

    def __init__(self, json_app: ASGIApp, sse_app: ASGIApp | None, single_call: SingleCallJson | None = None) -> None:
        self.json_app = json_app
        self.sse_app = sse_app
        self.single_call = single_call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await (self.sse_app or self.json_app)(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its request
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        if self.sse_app is not None and asks_for_progress(body):
            await self.sse_app(scope, replay, send)
        elif self.single_call is None or not await self.single_call.serve(scope, body, replay, send):
            await self.json_app(scope, replay, send)


def mcp_routes(mcp: Any, path: str, stateless: bool, mode: ResponseMode, host: str,
               lifespan_state: Any, max_body_bytes: int) -> tuple[list, list]:
    """The routes serving MCP at `path` and the SDK session managers to run in the app's lifespan.

    `mcp`: an SDK `MCPServer`; each `streamable_http_app` call builds one session manager over it.
    `lifespan_state`: what the server's lifespan yields (the runtime), for the single-call path.
    `max_body_bytes`: the server's request-body limit, given to the SDK too so MCP and HTTP agree."""
    from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
    from starlette.routing import Route

    def build(json_response: bool) -> tuple[list, Any]:
        app = mcp.streamable_http_app(streamable_http_path=path, stateless_http=stateless,
                                      json_response=json_response, host=host, max_request_body_size=max_body_bytes)
        return app.routes, mcp.session_manager

    def endpoint(routes: list) -> ASGIApp:
        (route,) = [r for r in routes if getattr(r, "path", None) == path]
        return route.endpoint

    if mode == "sse" or not stateless:
        routes, manager = build(json_response=mode == "json")
        return routes, [manager]
    json_routes, json_manager = build(json_response=True)
    # An authenticated route checks the caller in the SDK's endpoint: no direct path around it.
    guarded = isinstance(endpoint(json_routes), RequireAuthMiddleware)
    single_call = None if guarded else SingleCallJson(json_manager, lifespan_state)
    if mode == "json":
        router = ResponseModeRouter(endpoint(json_routes), None, single_call)
        others, managers = json_routes, [json_manager]
    else:
        sse_routes, sse_manager = build(json_response=False)
        router = ResponseModeRouter(endpoint(json_routes), endpoint(sse_routes), single_call)
        others, managers = sse_routes, [json_manager, sse_manager]
    others = [r for r in others if getattr(r, "path", None) != path]
    return [Route(path, endpoint=router), *others], managers
