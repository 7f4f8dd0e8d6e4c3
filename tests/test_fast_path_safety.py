"""The MCP fast paths (issue 12 item 8): used only with the SDK version and protocol revisions they were
verified against, switchable off, and carrying the SDK app's middleware."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.middleware import Middleware

from sie_mcp import mcp_single_call
from sie_mcp.http_app import create_app
from sie_mcp.mcp_single_call import fast_path_refusal
from sie_mcp.settings import Settings

HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_models", "arguments": {}}}


def _client(surface_catalog, **overrides) -> TestClient:
    settings = Settings(catalog=surface_catalog, stateless_http=True, **overrides)
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8080")


def _router(client: TestClient):
    (route,) = [r for r in client.app.routes if getattr(r, "path", None) == "/mcp"]
    return route.endpoint


def test_only_the_verified_sdk_minor_version_gets_the_fast_path():
    assert fast_path_refusal("on", "2.3.0") is None and fast_path_refusal("on", "2.3.7") is None
    assert "verified with 2.3" in fast_path_refusal("on", "2.4.0")
    assert "verified with 2.3" in fast_path_refusal("on", "3.0.1")
    assert fast_path_refusal("off", "2.3.0") == "--mcp-fast-path off"


@pytest.mark.parametrize("setting, single_call", [("on", True), ("off", False)])
def test_the_setting_turns_the_fast_path_off(surface_catalog, setting, single_call):
    with _client(surface_catalog, mcp_fast_path=setting) as client:
        router = _router(client)
        assert (router.single_call is not None) == single_call
        answer = client.post("/mcp", headers=HEADERS, json=CALL)
        assert answer.status_code == 200 and answer.json()["result"]["structuredContent"]["models"]


def test_an_sdk_of_another_version_falls_back_with_a_log_line(surface_catalog, monkeypatch, caplog):
    monkeypatch.setattr(mcp_single_call, "sdk_version", lambda: "2.9.0")
    with _client(surface_catalog) as client:
        assert _router(client).single_call is None
        assert client.post("/mcp", headers=HEADERS, json=CALL).status_code == 200
    assert "MCP fast path off: the installed MCP SDK is 2.9.0" in caplog.text


def test_revisions_outside_the_allowlist_go_to_the_sdk(surface_catalog, monkeypatch):
    monkeypatch.setattr(mcp_single_call, "FAST_PATH_REVISIONS", frozenset({"2025-11-25"}))
    with _client(surface_catalog) as client:
        single_call = _router(client).single_call
        served: list[bool] = []
        original = single_call.serve

        async def counting(*args):
            served.append(await original(*args))
            return served[-1]

        single_call.serve = counting
        assert client.post("/mcp", headers=HEADERS, json=CALL).status_code == 200  # 2025-06-18: not listed
        assert client.post("/mcp", headers={**HEADERS, "mcp-protocol-version": "2025-11-25"}, json=CALL).status_code == 200
    assert served == [False, True]


def test_the_sdk_apps_middleware_is_carried_over(surface_catalog, monkeypatch):
    """Whatever middleware the SDK puts on its app (auth context, …) runs around the route that replaces its
    endpoint, the fast path included."""
    from mcp.server.mcpserver import MCPServer

    class Stamp:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            async def stamped(message):
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"x-sdk-middleware", b"ran")]
                await send(message)

            await self.app(scope, receive, stamped)

    original = MCPServer.streamable_http_app

    def with_stamp(self, **kwargs):
        app = original(self, **kwargs)
        app.user_middleware.append(Middleware(Stamp))
        return app

    monkeypatch.setattr(MCPServer, "streamable_http_app", with_stamp)
    with _client(surface_catalog) as client:
        answer = client.post("/mcp", headers=HEADERS, json=CALL)
    assert answer.status_code == 200 and answer.headers["x-sdk-middleware"] == "ran"
