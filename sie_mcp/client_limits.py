"""Per-client limits (pure ASGI, behind the Guard): no one client can take the whole server.

A client is its bearer token when the server has tokens (a digest of it, never the token), else its IP
address. Two limits, each off at 0:

- **Calls in flight** (`--max-client-calls`): POSTs to a tool route or to `/mcp` that have not answered yet.
  One more is refused at once, before its body is read, with 429 + `Retry-After` (type `Overloaded`): the
  scheduler's queue bound protects the server, this one protects the other clients from a greedy one.
- **Open MCP sessions** (`--max-client-sessions`): a POST to `/mcp` without `Mcp-Session-Id` opens a session
  when it answers 2xx with one. While a client holds that many, its next opening request is refused with 429
  + `Retry-After`. A session stops counting when it is deleted (DELETE 2xx), when the SDK answers 404 for it
  (expired or gone), or after `--mcp-session-idle-s` with no request in flight: the idle time after which the
  SDK itself ends a session, given to it by the same setting, so both forget a session together. The
  total over all clients is the SDK's own cap (`--max-sessions`, 503 when reached).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import Overloaded
from sie_mcp.errors import error_body, retry_headers, send_json

log = logging.getLogger("sie_mcp")

SESSION_HEADER = b"mcp-session-id"


def client_of(scope: Scope) -> str:
    """The bearer token's digest when one is sent (the Guard has checked it), else the peer's address."""
    for key, value in scope.get("headers") or ():
        if key == b"authorization" and value[:7].lower() == b"bearer ":
            return "token:" + hashlib.sha256(value[7:].strip()).hexdigest()[:16]
    peer = scope.get("client")
    return f"ip:{peer[0]}" if peer else "ip:?"


@dataclass
class _Session:
    client: str
    last_end: float  # when its last request ended (or it opened)
    in_flight: int = 0


class ClientLimits:
    """See the module docstring. `counted(path)`: whether a POST to `path` is a call (tool routes, /mcp)."""

    def __init__(self, app: ASGIApp, max_calls: int, max_sessions: int, session_idle_s: float,
                 counted: Callable[[str], bool], mcp_path: str = "/mcp",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.max_calls, self.max_sessions = app, max_calls, max_sessions
        self.idle_s, self.counted, self.mcp_path, self.clock = session_idle_s, counted, mcp_path, clock
        self.calls: dict[str, int] = {}
        self.sessions: dict[str, _Session] = {}

    def open_sessions(self, client: str) -> int:
        now = self.clock()
        for sid in [s for s, v in self.sessions.items() if v.in_flight == 0 and now - v.last_end > self.idle_s]:
            del self.sessions[sid]  # the SDK has ended it too (same idle timeout)
        return sum(1 for v in self.sessions.values() if v.client == client)

    async def _refuse(self, send: Send, message: str) -> None:
        error = Overloaded(message, retry_after_s=1.0)
        log.info("refused: %s", message)
        await send_json(send, 429, error_body(error), (retry_headers(error) or {}).items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        client = client_of(scope)
        is_call = method == "POST" and self.counted(path)
        sid = next((v.decode("latin-1") for k, v in scope.get("headers") or () if k == SESSION_HEADER), None)
        session = self.sessions.get(sid) if path == self.mcp_path and sid else None
        opening = bool(self.max_sessions) and path == self.mcp_path and method == "POST" and sid is None
        if is_call and self.max_calls and self.calls.get(client, 0) >= self.max_calls:
            await self._refuse(send, f"this client has {self.max_calls} calls in flight, the limit per client: "
                                     "wait for one to finish, then retry")
            return
        if opening and self.open_sessions(client) >= self.max_sessions:
            await self._refuse(send, f"this client has {self.max_sessions} open MCP sessions, the limit per "
                                     "client: reuse one, or end one (DELETE /mcp with its Mcp-Session-Id)")
            return
        status: list[int] = []
        opened: list[str] = []

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                if opening and message["status"] < 300:
                    opened.extend(v.decode("latin-1") for k, v in message.get("headers") or () if k == SESSION_HEADER)
            await send(message)

        if is_call:
            self.calls[client] = self.calls.get(client, 0) + 1
        if session is not None:
            session.in_flight += 1
        try:
            await self.app(scope, receive, tracked)
        finally:
            if is_call:
                left = self.calls[client] - 1
                if left:
                    self.calls[client] = left
                else:
                    del self.calls[client]
            if session is not None:
                session.in_flight -= 1
                session.last_end = self.clock()
                ended = status and (status[0] == 404 or (method == "DELETE" and status[0] < 300))
                if ended:
                    self.sessions.pop(sid or "", None)
            for new in opened:
                self.sessions[new] = _Session(client, last_end=self.clock())
