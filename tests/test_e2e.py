"""End to end: `sie-tools serve` as a real process, over MCP (streamable HTTP and stdio) and plain HTTP."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.serve import SIE, free_port, serve


@pytest.fixture(scope="module")
def http_server(surface_catalog, tmp_path_factory):
    with serve(surface_catalog, tmp_path_factory.mktemp("server")) as s:
        yield s.url, s.proc, s.log


@pytest.mark.anyio
async def test_mcp_over_streamable_http(http_server):
    url, _, _ = http_server
    async with Client(f"{url}/mcp") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("embed", {"texts": ["A man is eating food.", "A man is eating bread."]})
    assert names >= {"embed", "rerank", "extract_entities", "classify", "list_models", "build_ontology",
                     "index_documents", "search"}
    assert not result.is_error and len(result.structured_content["embeddings"]) == 2


def test_plain_http(http_server):
    url, _, _ = http_server
    out = httpx.post(f"{url}/v1/tools/rerank", json={"query": "cats", "documents": ["a cat", "a stock"]}).json()
    assert out["results"][0]["index"] == 0
    assert httpx.post(f"{url}/v1/tools/embed", json={"texts": "x", "model": "nope"}).status_code == 404


def test_openai_client_parses_embeddings(http_server):
    from openai import OpenAI

    url, _, _ = http_server
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    response = client.embeddings.create(model="all-MiniLM-L6-v2", input=["hello world", "goodbye"], dimensions=128)
    assert len(response.data) == 2 and len(response.data[0].embedding) == 128
    assert response.usage.prompt_tokens > 0
    default_format = client.embeddings.create(model="sentence-transformers/all-MiniLM-L6-v2", input="hello world")
    assert len(default_format.data[0].embedding) == 384


def test_function_calling_example_against_a_scripted_llm(http_server):
    """examples/agents/function_calling_loop.py end to end; the LLM (which cannot exist here) is a scripted
    OpenAI-compatible double that asks for one rerank call, then answers with what the tool returned."""
    import threading

    import uvicorn
    from fastapi import FastAPI

    url, _, _ = http_server
    seen: list[dict] = []
    llm = FastAPI()

    @llm.post("/v1/chat/completions")
    async def complete(body: dict) -> dict:
        seen.append(body)
        tool_messages = [m for m in body["messages"] if m["role"] == "tool"]
        if not tool_messages:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function", "function": {
                    "name": "rerank", "arguments": '{"query": "cats", "documents": ["a stock", "a cat"], "top_k": 1}'}}]}
        else:
            best = json.loads(tool_messages[-1]["content"])["results"][0]["text"]
            message = {"role": "assistant", "content": f"Most relevant: {best}"}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(llm, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "agents"))
        from function_calling_loop import run

        os.environ.setdefault("OPENAI_API_KEY", "unused")
        answer = run("Which document is about cats?", url, f"http://127.0.0.1:{port}/v1", "scripted")
    finally:
        server.should_exit = True
        thread.join(10)
    assert answer == "Most relevant: a cat"
    assert {t["function"]["name"] for t in seen[0]["tools"]} >= {"embed", "rerank", "classify"}


def _queue_depth(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    return next(float(line.split()[-1]) for line in metrics.splitlines()
                if line.startswith('sie_tool_queue_depth{model="_all"}'))


def test_graceful_shutdown_on_sigterm(http_server):
    """Runs last among the HTTP tests: SIGTERM lets in-flight work finish, then the process exits.
    (uvicorn re-raises the signal after a clean shutdown, so the status is 0 or -SIGTERM.)"""
    url, proc, log = http_server
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        calls = [pool.submit(httpx.post, f"{url}/v1/tools/embed", json={"texts": ["word " * 200] * 8}, timeout=60)
                 for _ in range(4)]
        deadline = time.monotonic() + 30
        while _queue_depth(url) < 4:  # all four admitted: a call still connecting is not accepted work
            assert time.monotonic() < deadline, "the calls were not admitted"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        statuses = [c.result().status_code for c in calls]
    assert statuses == [200] * 4
    assert proc.wait(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()


@pytest.mark.anyio
async def test_mcp_over_stdio(surface_catalog):
    params = StdioServerParameters(command=SIE, args=["serve", "--catalog", str(surface_catalog)],
                                   env={**os.environ, "SIE_DEFAULT_NER_MODEL": "tiny-ner"})
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("classify", {"texts": "pasta with tomato sauce",
                                                     "labels": ["cooking", "tennis"]})
    assert "classify" in names
    assert result.structured_content["results"][0][0]["label"] == "cooking"
