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

import logging
from typing import Any

import pydantic_core
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sie_mcp.http_body import PARSED
from sie_mcp.http_guard import transport_security
from sie_mcp.mcp_single_call import SingleCallJson, fast_path_refusal
from sie_mcp.settings import FastPath, ResponseMode

log = logging.getLogger("sie_mcp")


def asks_for_progress(message: Any) -> bool:
    """Whether any JSON-RPC request in a POST's parsed body carries a progress token."""
    messages = message if isinstance(message, list) else [message]
    for m in messages:
        params = m.get("params") if isinstance(m, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        if isinstance(meta, dict) and "progressToken" in meta:
            return True
    return False


def parsed_message(scope: Scope, body: bytes) -> Any:
    """The POST's JSON (parsed once by sie_mcp/http_body.py; parsed here, bounded, where that did not run);
    None where it is not JSON (the SDK then answers the parse error)."""
    if PARSED in scope:
        return scope[PARSED]
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        return None


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

        message = parsed_message(scope, body)
        if self.sse_app is not None and asks_for_progress(message):
            await self.sse_app(scope, replay, send)
        elif self.single_call is None or not await self.single_call.serve(scope, body, message, replay, send):
            await self.json_app(scope, replay, send)


def mcp_routes(mcp: Any, path: str, stateless: bool, mode: ResponseMode, lifespan_state: Any,
               max_body_bytes: int, fast_path: FastPath = "on", max_sessions: int | None = 1000,
               session_idle_s: float = 1800.0) -> tuple[list, list]:
    """The routes serving MCP at `path` and the SDK session managers to run in the app's lifespan.

    `mcp`: an SDK `MCPServer`; each `streamable_http_app` call builds one session manager over it.
    `lifespan_state`: what the server's lifespan yields (the runtime), for the single-call path.
    `max_body_bytes`: the server's request-body limit, given to the SDK too so MCP and HTTP agree.
    `fast_path`: the `--mcp-fast-path` setting; the single-call path also needs the verified SDK version.
    `max_sessions`, `session_idle_s`: the SDK's cap on open sessions (503 past it) and idle timeout.
    Who may call is checked in front of every route (sie_mcp/http_guard.py), the fast path included, so
    the SDK's own Host/Origin check is off and nothing here depends on how the SDK wires authentication.
    The middleware of the SDK's app is carried over around the route that replaces its endpoint."""
    from starlette.routing import Route

    def build(json_response: bool) -> tuple[Any, Any]:
        app = mcp.streamable_http_app(streamable_http_path=path, stateless_http=stateless,
                                      json_response=json_response, max_request_body_size=max_body_bytes,
                                      transport_security=transport_security(), max_sessions=max_sessions,
                                      session_idle_timeout=session_idle_s)
        return app, mcp.session_manager

    def endpoint(app: Any) -> ASGIApp:
        (route,) = [r for r in app.routes if getattr(r, "path", None) == path]
        return route.endpoint

    def with_middleware(app: Any, inner: ASGIApp) -> ASGIApp:
        for middleware in reversed(app.user_middleware):  # as Starlette builds its stack: first is outermost
            inner = middleware.cls(inner, *middleware.args, **middleware.kwargs)
        return inner

    def others(app: Any) -> list:
        return [r for r in app.routes if getattr(r, "path", None) != path]

    if mode == "sse" or not stateless:
        app, manager = build(json_response=mode == "json")
        return [Route(path, endpoint=with_middleware(app, endpoint(app))), *others(app)], [manager]
    json_app, json_manager = build(json_response=True)
    refusal = fast_path_refusal(fast_path)
    if refusal is not None:
        log.warning("MCP fast path off: %s; stateless calls go through the SDK's own path", refusal)
    single_call = None if refusal is not None else SingleCallJson(json_manager, lifespan_state)
    if mode == "json":
        router = ResponseModeRouter(endpoint(json_app), None, single_call)
        outer, managers = json_app, [json_manager]
    else:
        sse_app, sse_manager = build(json_response=False)
        router = ResponseModeRouter(endpoint(json_app), endpoint(sse_app), single_call)
        outer, managers = sse_app, [json_manager, sse_manager]
    return [Route(path, endpoint=with_middleware(outer, router)), *others(outer)], managers
