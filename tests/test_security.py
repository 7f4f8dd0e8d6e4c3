"""Who may call the server (sie_mcp/http_guard.py), against real server processes in both bind modes:
foreign Host and Origin refused on every route, text/plain POSTs refused, bearer tokens required off
loopback (and never logged), an explicit and loud opt-out."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.serve import SIE, serve

TOKEN = "s3cret-token-for-tests-5f2c"
ENV_TOKEN = "env-token-1"  # SIE_AUTH_TOKENS, on the same server as the token file
ROUTES = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/v1/tools"), ("GET", "/v1/models"),
          ("GET", "/openapi.json"), ("GET", "/docs"), ("POST", "/v1/tools/embed"), ("POST", "/v1/tools/list_models"),
          ("POST", "/v1/embeddings"), ("POST", "/v1/rerank"), ("POST", "/mcp"), ("GET", "/mcp")]
MCP_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def request(url: str, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    headers = {"accept": "application/json, text/event-stream", **(headers or {})}
    if method == "POST" and body is None:
        body = b'{"texts": ["x"], "input": "x", "query": "q", "documents": ["a"]}'
        headers.setdefault("content-type", "application/json")
    return httpx.request(method, f"{url}{path}", headers=headers, content=body, timeout=30)


@pytest.fixture(scope="module")
def loopback(surface_catalog, tmp_path_factory):
    with serve(surface_catalog, tmp_path_factory.mktemp("sec"), "--stateless-http") as s:
        yield s


@pytest.fixture(scope="module")
def exposed(surface_catalog, tmp_path_factory):
    """Bound to 0.0.0.0 with a token file, a token from the environment and one extra allowed host name."""
    tmp = tmp_path_factory.mktemp("sec_exposed")
    tokens = tmp / "tokens"
    tokens.write_text(f"# tokens, one per line\n\n{TOKEN}\nanother-token\n")
    with serve(surface_catalog, tmp, "--auth-token-file", str(tokens), "--allowed-hosts", "sie.example",
               host="0.0.0.0", ready_headers={"host": "localhost"}, env={"SIE_AUTH_TOKENS": f'["{ENV_TOKEN}"]'}) as s:
        yield s


def _auth(server) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"} if "auth-token-file" in " ".join(server.proc.args) else {}


@pytest.fixture(params=["loopback", "exposed"])
def any_server(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("method, path", ROUTES)
def test_foreign_host_and_origin_are_refused_on_every_route(any_server, method, path):
    auth = _auth(any_server)
    rebinding = request(any_server.url, method, path, {"host": "evil.example:8080", **auth})
    assert rebinding.status_code == 421 and rebinding.json()["error"]["type"] == "MisdirectedRequest"
    page = request(any_server.url, method, path, {"origin": "http://evil.example", **auth})
    assert page.status_code == 403 and page.json()["error"]["type"] == "Forbidden"
    opaque = request(any_server.url, method, path, {"origin": "null", **auth})
    assert opaque.status_code == 403
    if (method, path) == ("GET", "/mcp"):
        return  # allowed, it opens an event stream that stays open
    # The same request from an allowed place is not refused by the guard.
    allowed = request(any_server.url, method, path, {"origin": "http://localhost:3000", **auth})
    assert allowed.status_code not in (401, 403, 421, 415), allowed.text[:200]


def test_configured_host_names_are_accepted(exposed):
    ok = request(exposed.url, "GET", "/v1/models", {"host": "sie.example", **_auth(exposed)})
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/v1/tools/embed", "/v1/embeddings", "/v1/rerank", "/mcp"])
def test_text_plain_posts_are_refused(loopback, path):
    """A page can send text/plain without a CORS preflight: it must not make the server compute."""
    response = request(loopback.url, "POST", path, {"content-type": "text/plain"}, b'{"texts": ["x"]}')
    assert response.status_code == 415 and response.json()["error"]["type"] == "UnsupportedMediaType"
    form = request(loopback.url, "POST", path, {"content-type": "application/x-www-form-urlencoded"}, b"texts=x")
    assert form.status_code == 415


def test_no_cors_headers_unless_configured(loopback):
    response = request(loopback.url, "GET", "/v1/models", {"origin": "http://localhost:3000"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("method, path", [r for r in ROUTES if r[1] not in ("/healthz", "/readyz", "/metrics")])
def test_off_loopback_every_route_needs_the_token(exposed, method, path):
    headers = {"host": "sie.example"}
    missing = request(exposed.url, method, path, headers)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error"]["type"] == "Unauthorized"
    wrong = request(exposed.url, method, path, {**headers, "authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    basic = request(exposed.url, method, path, {**headers, "authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    good = request(exposed.url, method, path, {**headers, "authorization": "Bearer another-token"})
    assert good.status_code not in (401, 403, 421), good.text[:200]


def test_probes_and_metrics_stay_open(exposed):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert request(exposed.url, "GET", path, {"host": "sie.example"}).status_code == 200


def test_mcp_client_gets_401_then_works_with_the_token(exposed):
    import anyio
    from mcp import Client

    url = f"http://127.0.0.1:{exposed.port}/mcp"
    assert request(exposed.url, "POST", "/mcp", body=httpx.Request("POST", "/", json=MCP_INIT).content,
                   headers={"content-type": "application/json"}).status_code == 401

    async def call() -> bool:
        import httpx2  # the SDK's HTTP client
        from mcp.client.streamable_http import streamable_http_client

        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                result = await client.call_tool("embed", {"texts": ["hello"]})
                return not result.is_error

    assert anyio.run(call)


def test_tokens_are_never_logged(exposed):
    for token in (TOKEN, "wrong-token-value-91"):
        request(exposed.url, "POST", "/v1/tools/embed", {"host": "sie.example", "authorization": f"Bearer {token}"})
    log = exposed.log_text()
    assert TOKEN not in log and "another-token" not in log and "wrong-token-value-91" not in log
    assert "bearer token" in log  # the refusal is logged, without the header


def test_off_loopback_without_auth_refuses_to_start(surface_catalog, tmp_path):
    out = subprocess.run([SIE, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "1",
                          "--catalog", str(surface_catalog)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "without authentication" in out.stderr


def test_no_auth_is_an_explicit_loud_opt_out(surface_catalog, tmp_path):
    with serve(surface_catalog, tmp_path, "--no-auth", host="0.0.0.0", ready_headers={"host": "localhost"}) as s:
        assert request(s.url, "POST", "/v1/tools/embed", {"host": "localhost"}).status_code == 200
        assert "WITHOUT AUTHENTICATION" in s.log_text()


def test_tokens_from_the_environment(exposed):
    """SIE_AUTH_TOKENS and the token file together (one server: a second start costs more than it proves)."""
    host = {"host": "localhost"}
    assert request(exposed.url, "GET", "/v1/models", host).status_code == 401
    assert request(exposed.url, "GET", "/v1/models", {**host, "authorization": f"Bearer {ENV_TOKEN}"}).status_code == 200
    assert request(exposed.url, "GET", "/v1/models", {**host, "authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert ENV_TOKEN not in exposed.log_text()
