"""Per-client limits (sie_mcp/client_limits.py) on a real server process: calls in flight and open MCP
sessions are bounded per client (a bearer token), refused with 429 + Retry-After, and one client at its limit
leaves another unaffected; the total session cap is the SDK's 503."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from sie_mcp.client_limits import ClientLimits
from tests.serve import serve

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "limits-test", "version": "1"}}}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
def server(surface_catalog, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    with serve(surface_catalog, tmp, "--max-client-calls", "2", "--max-client-sessions", "2", "--max-sessions", "3",
               env={"SIE_AUTH_TOKENS": '["token-a", "token-b", "token-c"]'}) as s:
        yield s


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def held_call(port: int, token: str) -> socket.socket:
    """A POST whose body never comes: in flight until the socket closes (or the read timeout)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /v1/tools/embed HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n".encode())
    return sock


def test_calls_in_flight_are_bounded_per_client(server):
    held = [held_call(server.port, "token-a") for _ in range(2)]
    try:
        time.sleep(0.5)  # both requests reached the server
        t = time.perf_counter()
        refused = httpx.post(f"{server.url}/v1/tools/embed", json={"texts": ["x"]}, headers=auth("token-a"), timeout=30)
        took = time.perf_counter() - t
        other = httpx.post(f"{server.url}/v1/tools/embed", json={"texts": ["x"]}, headers=auth("token-b"), timeout=60)
        mcp = httpx.post(f"{server.url}/mcp", json=INIT, headers={**MCP_HEADERS, **auth("token-a")}, timeout=30)
    finally:
        for sock in held:
            sock.close()
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1" and took < 2.0
    assert refused.json()["error"]["type"] == "Overloaded" and "per client" in refused.json()["error"]["message"]
    assert other.status_code == 200  # another client is not affected
    assert mcp.status_code == 429  # MCP POSTs count as calls too
    deadline = time.monotonic() + 10  # the held calls end when their sockets close
    while time.monotonic() < deadline:
        again = httpx.post(f"{server.url}/v1/tools/embed", json={"texts": ["x"]}, headers=auth("token-a"), timeout=60)
        if again.status_code == 200:
            break
        time.sleep(0.2)
    assert again.status_code == 200
    assert "token-a" not in server.log_text()


def test_open_sessions_are_bounded_per_client_and_in_all(server):
    def open_session(token: str) -> httpx.Response:
        return httpx.post(f"{server.url}/mcp", json=INIT, headers={**MCP_HEADERS, **auth(token)}, timeout=30)

    a1, a2, a3 = open_session("token-a"), open_session("token-a"), open_session("token-a")
    assert a1.status_code == a2.status_code == 200 and a1.headers["mcp-session-id"] != a2.headers["mcp-session-id"]
    assert a3.status_code == 429 and a3.headers["retry-after"] == "1" and "sessions" in a3.json()["error"]["message"]
    b1 = open_session("token-b")
    assert b1.status_code == 200  # another client still opens one
    c1 = open_session("token-c")
    assert c1.status_code == 503  # the total cap (--max-sessions 3), the SDK's answer
    gone = httpx.delete(f"{server.url}/mcp", headers={**MCP_HEADERS, **auth("token-a"),
                                                      "mcp-session-id": a1.headers["mcp-session-id"]}, timeout=30)
    assert gone.status_code == 200
    assert open_session("token-a").status_code == 200  # a deleted session no longer counts


def test_an_idle_session_stops_counting_when_the_sdk_ends_it():
    """The idle rule against a clock: a session with nothing in flight for longer than the idle time (the SDK's
    own timeout, set from the same setting) is forgotten; one with a request in flight is not."""
    now = [0.0]

    async def app(scope, receive, send):
        sid = b"s-%d" % len(opened)
        opened.append(sid)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"mcp-session-id", sid)]})
        await send({"type": "http.response.body", "body": b"{}"})

    opened: list[bytes] = []
    limits = ClientLimits(app, max_calls=0, max_sessions=1, session_idle_s=10, counted=lambda p: False,
                          clock=lambda: now[0])
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": [], "client": ("10.0.0.1", 1)}
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    async def run() -> list[int]:
        statuses = []
        for t in (0.0, 5.0, 10.5):
            now[0] = t
            sent.clear()
            await limits(scope, receive, send)
            statuses.append(sent[0]["status"])
        return statuses

    assert asyncio.run(run()) == [200, 429, 200]
