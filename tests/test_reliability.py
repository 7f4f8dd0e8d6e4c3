"""Issue 17's reproductions against the real server process: hostile inputs answered with a bounded 4xx
at once, non-finite model output an error, errors in one shape and bounded, disconnects cancel work,
overload rejected cheaply. Each test here failed on the code before the fix."""

from __future__ import annotations

import json
import shutil
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.serve import serve

MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
LONG_TEXT = " ".join(["reliability"] * 300)


@pytest.fixture(scope="module")
def nan_model(make_hf_model, tmp_path_factory) -> Path:
    """A tiny BERT whose embedding LayerNorm weights are NaN: every output is NaN."""
    base = make_hf_model("BertModel", seed=11)
    out = tmp_path_factory.mktemp("nan_model")
    shutil.copytree(base, out, dirs_exist_ok=True)
    state = load_file(base / "model.safetensors")
    key = next(k for k in state if k.endswith("embeddings.LayerNorm.weight"))
    state[key] = torch.full_like(state[key], float("nan"))
    save_file(state, out / "model.safetensors")
    return out


@pytest.fixture(scope="module")
def server(surface_catalog, nan_model, tmp_path_factory):
    with serve(surface_catalog, tmp_path_factory.mktemp("rel"), "--stateless-http", "--max-texts", "512",
               "--model", f"nan-model={nan_model}") as s:
        yield s


def post(server, path: str, body, **kw) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", **kw.pop("headers", {})}
    return httpx.post(f"{server.url}{path}", content=data, headers=headers, timeout=kw.pop("timeout", 60), **kw)


def mcp_call(server, name: str, arguments, request_id: int = 1, **kw) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    return post(server, "/mcp", body, headers=MCP_HEADERS, **kw)


def assert_error_shape(response: httpx.Response, status: int, error_type: str | None = None) -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    assert {"type", "message"} <= set(body["error"])
    if error_type:
        assert body["error"]["type"] == error_type, body
    return body["error"]


DEEP = b'{"texts": ["a"], "labels": ' + b"[" * 1000 + b"]" * 1000 + b"}"
HOSTILE = {
    "taxonomy of a 20,000-segment path": ("/v1/tools/classify",
                                          {"texts": ["a"], "taxonomy": [" > ".join(["a"] * 20000)]}, 413),
    "taxonomy of 1,000 segments": ("/v1/tools/classify", {"texts": ["a"], "taxonomy": [" > ".join(["a"] * 1000)]},
                                   413),
    "taxonomy nested 950 levels": ("/v1/tools/classify",
                                   b'{"texts":["a"],"taxonomy":' + b'{"a":' * 950 + b"{}" + b"}" * 951, 400),
    "taxonomy nested 100 levels": ("/v1/tools/classify",
                                   b'{"texts":["a"],"taxonomy":' + b'{"a":' * 100 + b"{}" + b"}" * 101, 413),
    "JSON nested 1,000 levels": ("/v1/tools/classify", DEEP, 400),
    "JSON nested 1,000 levels (embeddings)": ("/v1/embeddings", b'{"input": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400),
    "lone surrogate in a text": ("/v1/tools/embed", b'{"texts": ["\\ud800"]}', 400),
    "lone surrogate in a query": ("/v1/tools/rerank", b'{"query": "\\udfff x", "documents": ["a"]}', 400),
    "lone surrogate in a label": ("/v1/tools/classify", b'{"texts": ["a"], "labels": ["ok", "\\ud800"]}', 400),
    "lone surrogate (embeddings)": ("/v1/embeddings", b'{"input": "\\ud800"}', 400),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_gets_a_prompt_4xx(server, case):
    path, body, status = HOSTILE[case]
    t0 = time.perf_counter()
    response = post(server, path, body)
    elapsed = time.perf_counter() - t0
    assert_error_shape(response, status)
    assert elapsed < 2.0, f"{case}: {elapsed:.2f} s"  # ms in process; the margin is for a loaded CI machine
    assert len(response.content) < 2000


def test_hostile_inputs_do_not_delay_other_callers(server):
    """A one-text embed keeps its latency while the hostile bodies above are sent back to back."""
    def embed_latencies(n: int) -> list[float]:
        out = []
        with httpx.Client(timeout=30) as c:
            for i in range(n):
                t0 = time.perf_counter()
                assert c.post(f"{server.url}/v1/tools/embed", json={"texts": [f"hello {i}"]}).status_code == 200
                out.append(time.perf_counter() - t0)
        return out

    baseline = statistics.median(embed_latencies(9))
    stop = threading.Event()
    # Encoded once: the attacker's own json.dumps of an 80 KB taxonomy was client time, not server time.
    encoded = [(path, body if isinstance(body, bytes) else json.dumps(body).encode()) for path, body, _ in
               HOSTILE.values()]

    def attack() -> None:  # each hostile body in turn, 20 a second
        while not stop.is_set():
            for path, body in encoded:
                post(server, path, body)
                time.sleep(0.05)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        during = embed_latencies(9)
    finally:
        stop.set()
        attacker.join(30)
    # Before the fix one 20,000-segment taxonomy held the event loop for 6-7 s.
    assert statistics.median(during) < baseline * 3 + 0.2, (baseline, during)


def test_hostile_input_over_mcp_is_a_protocol_or_tool_error(server):
    deep = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"embed","arguments":{"texts":' + \
           b"[" * 1000 + b"]" * 1000 + b"}}}"
    response = post(server, "/mcp", deep, headers=MCP_HEADERS)
    assert response.status_code == 400 and response.json()["error"]["code"] == -32700
    surrogate = b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"embed","arguments":{"texts":"\\ud800"}}}'
    response = post(server, "/mcp", surrogate, headers=MCP_HEADERS)
    assert response.status_code == 400 and response.json()["error"]["code"] == -32700
    taxonomy = mcp_call(server, "classify", {"texts": ["a"], "taxonomy": [" > ".join(["a"] * 20000)]})
    result = taxonomy.json()["result"]
    assert result["isError"] and "InputTooLong" in result["content"][0]["text"]
    assert len(taxonomy.content) < 2000


def test_non_finite_output_is_a_model_error_never_null(server):
    for path, body in (("/v1/tools/embed", {"texts": ["a"], "model": "nan-model"}),
                       ("/v1/tools/rerank", {"query": "q", "documents": ["a", "b"], "model": "nan-model"}),
                       ("/v1/tools/classify", {"texts": ["a"], "labels": ["x", "y"], "model": "nan-model"}),
                       ("/v1/embeddings", {"input": "a", "model": "nan-model"})):
        error = assert_error_shape(post(server, path, body), 503, "ModelOutputError")
        assert "operator" in error["message"]
    result = mcp_call(server, "rerank", {"query": "q", "documents": ["a"], "model": "nan-model"}).json()["result"]
    assert result["isError"] and result["content"][0]["text"].startswith("ModelOutputError")
    assert "null" not in json.dumps(result)


def test_error_answers_are_bounded_and_never_echo_the_input(server):
    big = post(server, "/v1/embeddings", {"input": [1] * 50000})  # 150 KB of wrong types
    error = assert_error_shape(big, 422, "ValidationError")
    assert len(big.content) < 4000 and "(+" in error["message"]  # first items named, the rest counted
    texts = post(server, "/v1/tools/embed", {"texts": [1] * 500})  # within the count limit: 500 wrong types
    error = assert_error_shape(texts, 422, "ValidationError")
    assert len(texts.content) < 4000 and "(+" in error["message"]
    over = post(server, "/v1/tools/embed", {"texts": [1] * 50000})  # past the count limit: that is the answer
    error = assert_error_shape(over, 413, "InputTooLong")
    assert len(over.content) < 4000 and "split the call" in error["message"]
    over_mcp = mcp_call(server, "embed", {"texts": [1] * 50000}).json()
    assert len(json.dumps(over_mcp)) < 4000


def test_every_http_error_has_the_documented_shape(server):
    assert_error_shape(httpx.get(f"{server.url}/no/such/route"), 404)
    assert_error_shape(httpx.get(f"{server.url}/v1/embeddings"), 405)
    assert_error_shape(post(server, "/v1/embeddings", {"nope": 1}), 422, "ValidationError")
    assert_error_shape(post(server, "/v1/tools/nope", {}), 404, "UnknownTool")
    assert_error_shape(post(server, "/v1/tools/embed", b"{not json"), 400, "InvalidJSON")
    assert_error_shape(post(server, "/v1/tools/embed", {"texts": "x", "model": "broken"}), 503, "ModelLoadError")


@pytest.mark.parametrize("path, body", [
    ("/v1/tools/embed", {"texts": ["a"], "dimensions": True}),
    ("/v1/tools/embed", {"texts": ["a"], "normalize": 0}),
    ("/v1/tools/rerank", {"query": "q", "documents": ["a"], "top_k": True}),
    ("/v1/tools/classify", {"texts": ["a"], "labels": ["x"], "beam": "2"}),
    ("/v1/tools/classify", {"texts": ["a"], "labels": ["x"], "top_k": 2.5}),
    ("/v1/embeddings", {"input": "a", "dimensions": True}),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": True}),
])
def test_types_are_not_coerced(server, path, body):
    assert_error_shape(post(server, path, body), 422, "ValidationError")


def test_no_internal_path_in_any_response(server, surface_catalog):
    """Load errors, list_models and readiness name models and files, never the directories they live in."""
    root = str(surface_catalog.parent.parent)  # pytest's temp root: every model dir of the catalog is below it
    answers = [post(server, "/v1/tools/embed", {"texts": "x", "model": "broken"}).text,
               post(server, "/v1/tools/list_models", {}).text,
               httpx.get(f"{server.url}/v1/models").text,
               httpx.get(f"{server.url}/readyz").text,
               mcp_call(server, "embed", {"texts": "x", "model": "broken"}).text,
               mcp_call(server, "list_models", {}).text]
    for answer in answers:
        assert root not in answer and "/tmp/" not in answer, answer[:300]
    assert "config.json is missing" in answers[0]  # the reason stays, the path goes
    assert root in server.log_text()  # the operator's log keeps it


def _batches(server) -> float:
    return server.metric('sie_batch_tokens_count{model="all-MiniLM-L6-v2"}')


def _wait_idle(server, timeout_s: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if server.metric('sie_tool_queue_depth{model="_all"}') == 0:
            return time.monotonic() - t0
        time.sleep(0.05)
    return float("inf")


@pytest.mark.parametrize("route", ["rest", "mcp"])
def test_a_disconnected_callers_work_is_cancelled(server, route):
    """512 long texts are 16+ batches; the caller hangs up after 1 s, and the rest is never computed."""
    texts = [f"{i} {LONG_TEXT}" for i in range(512)]
    assert _wait_idle(server, 60) < 60
    before = _batches(server)
    timeout = httpx.Timeout(10, read=1.0)
    with pytest.raises(httpx.ReadTimeout):
        if route == "rest":
            post(server, "/v1/tools/embed", {"texts": texts}, timeout=timeout)
        else:
            mcp_call(server, "embed", {"texts": texts}, timeout=timeout)
    assert _wait_idle(server, 10) < 10
    ran = _batches(server) - before
    assert ran <= 8, f"{ran} batches ran for a caller that had gone"  # all of it: >= 16


@pytest.mark.slow
def test_overload_is_rejected_at_once_with_a_retry_hint(surface_catalog, tmp_path_factory):
    """A queue of 2 and 48 concurrent clients: every call is answered (200 or 429 + Retry-After), rejections
    come fast, no connection is reset, and the queue drains to 0."""
    with serve(surface_catalog, tmp_path_factory.mktemp("overload"), "--max-queue", "2") as s:
        results: list[tuple[int, float, str | None]] = []
        lock = threading.Lock()

        def client(c: int) -> None:
            with httpx.Client(timeout=60) as http:
                for i in range(6):
                    t0 = time.perf_counter()
                    # One text a call: 48 clients at once overflow a queue of 2 all the same, and the accepted
                    # calls (what this test spends its time on) cost a quarter of four texts.
                    r = http.post(f"{s.url}/v1/tools/embed", json={"texts": [f"{c} {i} {LONG_TEXT}"]})
                    with lock:
                        results.append((r.status_code, time.perf_counter() - t0, r.headers.get("retry-after")))

        threads = [threading.Thread(target=client, args=(c,)) for c in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        statuses = {code for code, _, _ in results}
        rejected = sorted(t for code, t, _ in results if code == 429)
        assert len(results) == 48 * 6 and statuses <= {200, 429}, statuses  # a reset would have raised
        assert rejected and all(h is not None for code, _, h in results if code == 429)
        p99 = rejected[min(len(rejected) - 1, int(0.99 * len(rejected)))]
        accepted = sorted(t for code, t, _ in results if code == 200)
        # Rejection costs a header look-up; measured figures (quiet machine) are in docs/reliability.md. Here,
        # on a shared CI machine, only a generous bound and the comparison with an accepted call's latency.
        assert p99 < 10.0 and statistics.median(rejected) < statistics.median(accepted), (p99, accepted[:5])
        assert _wait_idle(s, 10) < 10
