"""A POST's body, read once before any route runs, and the call bound to its client (pure ASGI).

- **Overload first** (429 + `Retry-After`): a tool route's POST is refused while the scheduler's queue is
  full, before its body is read, parsed or validated. Under overload every rejected call used to be parsed
  and validated on the event loop first, so rejecting took seconds; now it costs a header look-up.
- **Bounded reading**: at most `max_body_bytes` (413), each chunk within `read_timeout_s` (408), so a
  client that sends half a request cannot hold a connection open.
- **One strict parse** (400; on `/mcp` a JSON-RPC parse error): pydantic-core's parser refuses nesting
  deeper than 200 levels and lone surrogates (`"\\ud800"`, not valid UTF-8 and fatal to the tokenizer),
  in compiled code, in time linear in the body. The parsed value is kept in the scope (`PARSED`) for the
  routes, which therefore never parse again.
- **Disconnects cancel the call**: the route runs in its own task while this one waits for the client's
  `http.disconnect`; if the client goes away before the answer is complete, the task is cancelled, and so
  is the call's queued and chunked work in the scheduler (its futures are dropped before batching).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pydantic_core
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import EngineError
from sie_mcp.errors import error_body, log_engine_error, retry_headers, send_json, send_problem

log = logging.getLogger("sie_mcp")

PARSED = "sie.json"  # scope key: the parsed JSON body of a POST


def parsed_body(scope: Scope) -> Any:
    """The JSON value of the POST's body, parsed by BodyReader (KeyError where it did not run)."""
    return scope[PARSED]


class BodyReader:
    """See the module docstring. `admission(path)`: the error refusing a call on `path` now, or None.
    `jsonrpc_paths`: where a parse error is answered as JSON-RPC (MCP)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, read_timeout_s: float,
                 admission: Callable[[str], EngineError | None], jsonrpc_paths: frozenset[str]) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.read_timeout_s = read_timeout_s
        self.admission = admission
        self.jsonrpc_paths = jsonrpc_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refusal = self.admission(scope["path"])
        if refusal is not None:
            log_engine_error(refusal)
            await send_json(send, 429 if retry_headers(refusal) else 503, error_body(refusal),
                            (retry_headers(refusal) or {}).items())
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except TimeoutError:
                log.info("refused: request body not received within %.0f s (%s)", self.read_timeout_s, scope["path"])
                await send_problem(send, 408, "RequestTimeout", f"the request body did not arrive within "
                                   f"{self.read_timeout_s:.0f} s", [("Connection", "close")])
                return
            if message["type"] == "http.disconnect":
                return  # gone before sending its request
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            scope[PARSED] = pydantic_core.from_json(body) if body else None
        except ValueError as e:
            await self._not_json(scope, send, str(e))
            return
        await self._run_bound_to_client(scope, body, receive, send)

    async def _run_bound_to_client(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        replayed = False
        finished = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def tracked_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        call = asyncio.ensure_future(self.app(scope, replay, tracked_send))
        watcher = asyncio.ensure_future(watch())
        cancelled = False
        try:
            await asyncio.wait({call, watcher}, return_when=asyncio.FIRST_COMPLETED)
            # The server reports a disconnect once the answer is complete too: only one before that cancels.
            if gone.is_set() and not finished and not call.done():
                log.info("client went away: cancelled its call (%s)", scope["path"])
                call.cancel()
                cancelled = True
        finally:
            if not call.done() and not finished:  # this task was cancelled (shutdown): so is the call
                call.cancel()
                cancelled = True
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            try:
                await call  # re-raises the route's own exception, if it had one
            except asyncio.CancelledError:
                if not cancelled:
                    raise

    async def _too_large(self, send: Send) -> None:
        await send_problem(send, 413, "RequestTooLarge", f"request body exceeds {self.limit} bytes",
                           [("Connection", "close")])

    async def _not_json(self, scope: Scope, send: Send, reason: str) -> None:
        message = f"the body is not valid JSON: {reason} (nesting deeper than 200 levels and lone UTF-16 " \
                  "surrogates are refused)"
        if scope["path"] in self.jsonrpc_paths:
            await send_json(send, 400, {"jsonrpc": "2.0", "id": None,
                                        "error": {"code": -32700, "message": f"Parse error: {message}"}})
        else:
            await send_problem(send, 400, "InvalidJSON", message)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers") or ():
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None
