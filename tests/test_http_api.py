"""Every HTTP route on the real app (in-process ASGI, lifespan included)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sie_mcp.http_app import create_app
from sie_mcp.settings import Settings


def _client(surface_catalog, **overrides) -> TestClient:
    settings = Settings(**{"catalog": surface_catalog, "default_ner_model": "tiny-ner", "max_texts": 10, **overrides})
    # A loopback Host header: the MCP transport's DNS-rebinding protection refuses TestClient's "testserver".
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8080")


@pytest.fixture(scope="module")
def client(surface_catalog):
    with _client(surface_catalog, max_body_bytes=200_000) as c:
        for _ in range(200):  # preload runs in the background: wait for readiness
            if c.get("/readyz").status_code == 200:
                break
            import time

            time.sleep(0.05)
        yield c


def test_health_ready_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.post("/v1/tools/embed", json={"texts": "warm"})
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(client.get("/metrics").text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    model = "all-MiniLM-L6-v2"
    assert value("sie_tool_queue_depth", model="_all") == 0  # the call finished
    assert value("sie_batch_tokens_count", model=model) >= 1
    assert value("sie_request_phase_seconds_count", model=model, phase="compute") >= 1
    assert value("sie_model_loads_total", model=model, source="disk") == 1
    assert value("sie_model_resident_bytes", model=model, device="cpu") > 10e6


def test_tool_listing_in_mcp_and_openai_shapes(client):
    body = client.get("/v1/tools").json()
    names = [t["name"] for t in body["tools"]]
    assert names == ["embed", "rerank", "extract_entities", "extract_relations", "extract", "classify", "list_models",
                     "index_documents", "search",
                     "list_collections", "delete_collection", "build_ontology", "graph_search", "graph_neighbors",
                     "graph_path", "graph_subgraph"]
    fn = body["openai_functions"][0]
    assert fn["type"] == "function" and fn["function"]["name"] == "embed"
    assert fn["function"]["parameters"]["properties"]["texts"]
    assert body["tools"][0]["annotations"]["readOnlyHint"] is True


def test_tool_call_returns_the_structured_result(client):
    out = client.post("/v1/tools/embed", json={"texts": ["a", "b"], "dimensions": 8}).json()
    assert out["dimensions"] == 8 and len(out["embeddings"]) == 2
    out = client.post("/v1/tools/classify", json={"texts": "pasta recipe", "labels": ["cooking", "tennis"]}).json()
    assert out["results"][0][0]["label"] == "cooking"
    out = client.post("/v1/tools/list_models", json={}).json()
    assert any(m["id"] == "tiny-ner" for m in out["models"])
    # Arguments are validated as MCP validates them: a list sent as a JSON string is read as the list.
    out = client.post("/v1/tools/embed", json={"texts": '["a", "b"]'}).json()
    assert len(out["embeddings"]) == 2


@pytest.mark.parametrize("path, body, status, error_type", [
    ("/v1/tools/nope", {}, 404, "UnknownTool"),
    ("/v1/tools/embed", {"texts": 5}, 422, "ValidationError"),
    ("/v1/tools/embed", {"texts": []}, 422, "ValidationError"),
    ("/v1/tools/embed", {"texts": "x", "model": "missing"}, 404, "UnknownModel"),
    ("/v1/tools/embed", {"texts": ["x"] * 11}, 413, "InputTooLong"),
    ("/v1/tools/embed", {"texts": "x", "model": "broken"}, 503, "ModelLoadError"),
    ("/v1/tools/embed", {"texts": "x", "model": "tiny-ner"}, 400, "UnsupportedTask"),
    ("/v1/embeddings", {"input": "x" * 300_000}, 413, "RequestTooLarge"),
    ("/v1/rerank", {"query": "q", "documents": [{"no": "text"}]}, 422, "ValidationError"),
])
def test_errors_map_to_statuses(client, path, body, status, error_type):
    response = client.post(path, json=body)
    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type
    assert "Traceback" not in response.text


def test_tool_arguments_must_be_an_object(client):
    response = client.post("/v1/tools/embed", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_openai_embeddings_float_and_base64(client):
    floats = client.post("/v1/embeddings", json={"input": ["hello", "world"], "dimensions": 32}).json()
    assert floats["object"] == "list" and floats["model"] == "all-MiniLM-L6-v2"
    assert [d["index"] for d in floats["data"]] == [0, 1] and len(floats["data"][0]["embedding"]) == 32
    assert floats["usage"]["prompt_tokens"] == floats["usage"]["total_tokens"] > 0
    packed = client.post("/v1/embeddings", json={"input": "hello", "encoding_format": "base64"}).json()
    vec = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert vec.shape == (384,)
    same = client.post("/v1/embeddings", json={"input": "hello"}).json()["data"][0]["embedding"]
    assert np.allclose(vec, same, atol=1e-6)


def test_rerank_cohere_style(client):
    docs = ["The cat sat on the mat.", "Stock markets fell.", {"text": "Kittens play."}]
    out = client.post("/v1/rerank", json={"query": "cats", "documents": docs, "top_n": 2}).json()
    assert len(out["results"]) == 2 and out["method"] == "embedding-cosine"
    assert out["results"][0]["relevance_score"] >= out["results"][1]["relevance_score"]
    assert "document" in out["results"][0]
    bare = client.post("/v1/rerank", json={"query": "cats", "documents": docs, "model": "tiny-reranker",
                                           "return_documents": False}).json()
    assert bare["method"] == "cross-encoder" and "document" not in bare["results"][0]


def test_models_route(client):
    data = client.get("/v1/models").json()["data"]
    assert {"all-MiniLM-L6-v2", "tiny-reranker", "tiny-ner"} <= {m["id"] for m in data}
    assert all(m["object"] == "model" for m in data)


def test_openapi_docs(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/embeddings" in spec["paths"] and "/v1/rerank" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_overloaded_is_429_with_retry_after(surface_catalog):
    with _client(surface_catalog, max_queue=0) as c:
        response = c.post("/v1/tools/embed", json={"texts": "x"})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["type"] == "Overloaded"


def test_not_ready_while_default_model_fails(surface_catalog):
    with _client(surface_catalog, default_embed_model="broken") as c:
        import time

        for _ in range(100):
            body = c.get("/readyz").json()
            if body["preload_error"]:
                break
            time.sleep(0.05)
        assert c.get("/readyz").status_code == 503 and "broken" in body["preload_error"]
        assert c.get("/healthz").status_code == 200


def test_openai_embeddings_refuse_non_dense_models(client):
    response = client.post("/v1/embeddings", json={"input": "x", "model": "splade-tiny"})
    assert response.status_code == 400 and "/v1/tools/embed" in response.json()["error"]["message"]


MCP_HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


def _mcp_call(client, texts, progress_token=None):
    params = {"name": "embed", "arguments": {"texts": texts}}
    if progress_token is not None:
        params["_meta"] = {"progressToken": progress_token}
    return client.post("/mcp", headers=MCP_HEADERS, json={"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                                          "params": params})


@pytest.mark.parametrize("mode", ["auto", "sse", "json"])
def test_mcp_response_mode_in_stateless_http(surface_catalog, mode):
    """auto: a plain call gets one JSON body, a call with a progress token its SSE stream and progress."""
    long_call = [f"text number {i}" for i in range(200)]
    with _client(surface_catalog, stateless_http=True, mcp_response=mode, max_texts=256) as client:
        plain = _mcp_call(client, ["hello"])
        with_progress = _mcp_call(client, long_call, progress_token="p-1")
    assert plain.status_code == 200 and with_progress.status_code == 200
    plain_type = plain.headers["content-type"].split(";")[0]
    assert plain_type == ("text/event-stream" if mode == "sse" else "application/json")
    if plain_type == "application/json":
        assert len(plain.json()["result"]["structuredContent"]["embeddings"]) == 1
    progress_type = with_progress.headers["content-type"].split(";")[0]
    assert progress_type == ("application/json" if mode == "json" else "text/event-stream")
    progress_events = with_progress.text.count('"method":"notifications/progress"')
    assert (progress_events >= 3) if mode != "json" else progress_events == 0
    assert '"structuredContent"' in with_progress.text


def test_mcp_response_router_reads_progress_tokens_only_from_request_meta():
    import orjson

    from sie_mcp.mcp_response_mode import asks_for_progress

    def asks(body: bytes) -> bool:
        return asks_for_progress(orjson.loads(body))

    assert asks(b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":3}}}')
    assert asks(b'[{"method":"ping"},{"params":{"_meta":{"progressToken":"x"}}}]')
    assert not asks(b'{"method":"tools/call","params":{"arguments":{"texts":["progressToken"]}}}')
    assert not asks_for_progress(None)  # not JSON: the SDK answers the parse error


MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {}}


def _call_body(request_id, name, arguments, modern):
    params = {"name": name, "arguments": arguments}
    if modern:
        params["_meta"] = MODERN_META
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _era_headers(era, name):
    headers = {"accept": "application/json, text/event-stream"}
    if era == "modern":
        headers |= {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": name}
    elif era == "2025-06-18":
        headers["mcp-protocol-version"] = era
    return headers


@pytest.mark.parametrize("era", ["no version header", "2025-06-18", "modern"])
def test_single_call_path_answers_exactly_as_the_sdk(surface_catalog, era):
    """A stateless tools/call POST is answered by sie_mcp/mcp_single_call.py, without the SDK's per-POST
    transport; its answers (result, tool errors, protocol errors, HTTP status) equal the SDK's own,
    which the same request gets when it carries a session id (the direct path declines those)."""
    cases = [("embed", {"texts": ["hello there", "a second text"]}),
             ("embed", {"texts": []}),  # an engine error: an isError result
             ("embed", {"textz": ["typo"]}),  # rejected arguments: the SDK writes the error
             ("embed", {"texts": '["a JSON string", "of texts"]'}),  # the SDK's pre-parsing applies
             ("no_such_tool", {}),
             ("rerank", {"query": "q", "documents": ["a", "b"]}),
             ("classify", {"texts": "a bug report", "labels": ["bug", "praise"]}),
             ("list_models", {})]
    with _client(surface_catalog, stateless_http=True) as client:
        (route,) = [r for r in client.app.routes if getattr(r, "path", None) == "/mcp"]
        single_call = route.endpoint.single_call
        served = []
        original_serve = single_call.serve

        async def counting_serve(*args):
            answered = await original_serve(*args)
            served.append(answered)
            return answered

        single_call.serve = counting_serve
        def same_as_sdk(body: dict, status: int = 200):
            name = body["params"]["name"]
            direct = client.post("/mcp", headers=_era_headers(era, name), json=body)
            via_sdk = client.post("/mcp", headers=_era_headers(era, name) | {"mcp-session-id": "x"}, json=body)
            assert direct.status_code == via_sdk.status_code == status, (name, direct.text)
            assert direct.headers["content-type"] == "application/json"
            assert direct.json() == via_sdk.json(), name
            return direct

        for i, (name, arguments) in enumerate(cases):
            last = same_as_sdk(_call_body(i, name, arguments, modern=era == "modern"))
        # An extra `_meta` key, arguments that are not an object, and (2026-07-28) envelope values of the
        # wrong type, which the SDK rejects: answered as the SDK answers them.
        extra_meta = _call_body(90, "embed", {"texts": ["x"]}, modern=era == "modern")
        extra_meta["params"]["_meta"] = {**extra_meta["params"].get("_meta", {}), "com.example/trace": "t"}
        assert same_as_sdk(extra_meta).json()["result"]["isError"] is False
        not_an_object = _call_body(91, "list_models", [], modern=era == "modern")
        assert "error" in same_as_sdk(not_an_object, status=400 if era == "modern" else 200).json()
        declined = 2
        if era == "modern":
            bad_envelope = _call_body(92, "embed", {"texts": ["x"]}, modern=True)
            bad_envelope["params"]["_meta"] = {**MODERN_META, "io.modelcontextprotocol/clientCapabilities": "nope"}
            assert "error" in same_as_sdk(bad_envelope, status=400).json()
            declined += 1
    assert served == [True, False] * (len(cases) + declined)
    assert last.json()["result"]["structuredContent"]["models"]  # the last case: list_models


def test_single_call_path_leaves_everything_else_to_the_sdk(surface_catalog):
    """Batches, other methods, initialize, bad Accept or envelope: the SDK answers (and rejects) them."""
    headers = _era_headers("2025-06-18", "embed")
    with _client(surface_catalog, stateless_http=True) as client:
        listed = client.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert listed.status_code == 200 and "embed" in {t["name"] for t in listed.json()["result"]["tools"]}
        call = _call_body(2, "embed", {"texts": ["x"]}, modern=False)
        assert client.post("/mcp", headers={**headers, "accept": "text/html"}, json=call).status_code == 406
        batch = client.post("/mcp", headers=headers, json=[call])  # this SDK revision refuses batches
        assert batch.status_code == 400 and batch.json()["error"]["code"] == -32602
        modern_without_envelope = client.post("/mcp", headers=_era_headers("modern", "embed"), json=call)
        assert modern_without_envelope.status_code == 400
        assert "_meta" in modern_without_envelope.json()["error"]["message"]
        mismatched = client.post("/mcp", headers=_era_headers("modern", "rerank"),
                                 json=_call_body(3, "embed", {"texts": ["x"]}, modern=True))
        assert mismatched.status_code == 400 and "error" in mismatched.json()


def test_single_call_path_declines_what_it_cannot_write_as_the_sdk(surface_catalog):
    """An integer id beyond 64 bits (valid JSON-RPC, beyond orjson) and a body over the limit are
    answered by the SDK: the call still works, and the limit is the server's one for every route."""
    headers = _era_headers("2025-06-18", "embed")
    with _client(surface_catalog, stateless_http=True, max_body_bytes=4096) as client:
        big_id = 2**70
        answer = client.post("/mcp", headers=headers, json=_call_body(big_id, "embed", {"texts": ["x"]}, modern=False))
        assert answer.status_code == 200 and answer.json()["id"] == big_id
        assert len(answer.json()["result"]["structuredContent"]["embeddings"][0]) > 0
        too_big = client.post("/mcp", headers=headers, json=_call_body(1, "embed", {"texts": ["x" * 5000]}, modern=False))
        assert too_big.status_code == 413
