"""Malformed JSON-RPC over MCP, on stateless HTTP, with sessions, and on stdio: always a protocol error (or
a tool error), never a 5xx, never a silent drop."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time

import httpx
import pytest

from tests.serve import SIE, serve

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json",
           "mcp-protocol-version": "2025-06-18"}
DEEP = b"[" * 1000 + b"]" * 1000

# Bodies a client may send, each with an id where it has one (an answer is owed to every request).
MALFORMED: dict[str, bytes] = {
    "not JSON": b"{this is not json",
    "truncated": b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "embed"',
    "empty object": b"{}",
    "a number": b"42",
    "wrong jsonrpc version": b'{"jsonrpc": "1.0", "id": 2, "method": "tools/list"}',
    "no method": b'{"jsonrpc": "2.0", "id": 3}',
    "method not a string": b'{"jsonrpc": "2.0", "id": 4, "method": 7}',
    "unknown method": b'{"jsonrpc": "2.0", "id": 5, "method": "no/such/method"}',
    "params not an object": b'{"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": [1, 2]}',
    "arguments not an object": b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "embed", '
                               b'"arguments": "x"}}',
    "id an object": b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"}',
    "deeply nested params": b'{"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "embed", '
                            b'"arguments": {"texts": ' + DEEP + b"}}}",
    "lone surrogate": b'{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "embed", '
                      b'"arguments": {"texts": ["\\ud800"]}}}',
    "batch of garbage": b"[1, 2, 3]",
    "empty batch": b"[]",
    "huge id": b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b', "method": "tools/list"}',
}


def _answers(response: httpx.Response) -> list[dict]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    body = response.json()
    return body if isinstance(body, list) else [body]


@pytest.fixture(scope="module", params=["stateless", "sessions"])
def http_server(request, surface_catalog, tmp_path_factory):
    args = ["--stateless-http"] if request.param == "stateless" else []
    with serve(surface_catalog, tmp_path_factory.mktemp(f"malformed-{request.param}"), *args) as s:
        session = None
        if request.param == "sessions":
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            r = httpx.post(f"{s.url}/mcp", json=init, headers=HEADERS, timeout=30)
            session = r.headers["mcp-session-id"]
            httpx.post(f"{s.url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                       headers={**HEADERS, "mcp-session-id": session}, timeout=30)
        yield s, session


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_json_rpc_over_http(http_server, case):
    server, session = http_server
    headers = {**HEADERS, **({"mcp-session-id": session} if session else {})}
    response = httpx.post(f"{server.url}/mcp", content=MALFORMED[case], headers=headers, timeout=30)
    assert response.status_code < 500, (case, response.status_code, response.text[:300])
    assert len(response.content) < 10_000
    if response.status_code >= 400 and response.content:
        body = response.json()
        assert "error" in body, body
    elif response.content:
        answers = _answers(response)
        assert answers and all("error" in a or "result" in a for a in answers), answers
    # The server is still serving.
    ok = httpx.post(f"{server.url}/mcp", headers=headers, timeout=30,
                    json={"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                          "params": {"name": "embed", "arguments": {"texts": ["still here"]}}})
    assert ok.status_code == 200 and "structuredContent" in ok.text


class StdioServer:
    """`sie-tools serve` (stdio) driven line by line: raw bytes in, JSON-RPC lines out."""

    def __init__(self, catalog) -> None:
        env = {**os.environ, "SIE_CATALOG": str(catalog), "SIE_DEFAULT_NER_MODEL": "tiny-ner"}
        self.proc = subprocess.Popen([SIE, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def send(self, line: bytes) -> None:
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def read(self, timeout_s: float = 60) -> dict | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def test_malformed_json_rpc_over_stdio(surface_catalog):
    server = StdioServer(surface_catalog)
    try:
        server.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).encode())
        assert server.read()["id"] == 0
        server.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        owed = {  # requests with a readable id: each must get an answer with that id
            "unknown method": 5, "params not an object": 6, "arguments not an object": 7, "lone surrogate": None,
            "wrong jsonrpc version": 2, "no method": 3, "method not a string": 4, "deeply nested params": None,
            "not JSON": None, "truncated": None, "empty object": None, "a number": None, "id an object": None,
            "batch of garbage": None, "empty batch": None, "huge id": None}
        for case, request_id in owed.items():
            server.send(MALFORMED[case])
            answer = server.read(30)
            assert answer is not None, f"{case}: no answer on stdout"
            assert "error" in answer or answer.get("result", {}).get("isError"), (case, answer)
            if request_id is not None:
                assert answer["id"] == request_id, (case, answer)
            assert len(json.dumps(answer)) < 10_000
        server.send(json.dumps({"jsonrpc": "2.0", "id": 100, "method": "tools/call",
                                "params": {"name": "embed", "arguments": {"texts": ["still here"]}}}).encode())
        answer = server.read()
        assert answer["id"] == 100 and not answer["result"]["isError"]
    finally:
        server.close()
