"""examples/agents/ against a real `sie-tools serve` process on the embedded default: the retrieval walkthrough,
the e-commerce agent (its LLM a scripted stand-in, the only double), the integrations on their real
libraries (Chroma, LangChain, Qdrant, langchain-mcp-adapters), and the Claude configs as shipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.serve import serve

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "agents"
sys.path.insert(0, str(EXAMPLES))


@pytest.fixture(scope="module")
def server(surface_catalog, tmp_path_factory):
    """sie-mcp over HTTP with the real MiniLM, a tiny NER model, its own data directory."""
    tmp = tmp_path_factory.mktemp("examples")
    with serve(surface_catalog, tmp, env={"SIE_DATA_DIR": str(tmp / "data")}, graceful=True) as s:
        yield s.url


@pytest.mark.anyio
async def test_retrieval_walkthrough(server):
    from retrieval_walkthrough import main

    lines: list[str] = []
    await main(f"{server}/mcp", out=lines.append)
    steps = {block.split("\n", 1)[0]: block for block in lines}
    first = json.loads(steps["$ search 'can I send back a laptop I opened?'"].split("\n")[1])
    assert first["results"][0]["id"] == "returns"
    reviews = json.loads(steps["$ search reviews only"].split("\n")[1])
    assert [h["id"] for h in reviews["results"]] == ["x1-review", "tab-review"]
    covered = json.loads(steps["$ search 2025 policies, reranked, full text"].split("\n")[1])
    assert covered["results"][0]["id"] == "warranty" and covered["method"] == "vector+embedding-cosine"
    assert all(len(block) < 1500 for block in lines)  # what an agent reads per step stays small


class ScriptedClaude:
    """The stand-in for the LLM (which cannot run here): asks for two searches, then answers with the ids
    the tool results contained. It checks what the agent loop sends it, as the API would."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.messages = self

    async def create(self, **request):
        from anthropic.types import Message, TextBlock, ToolUseBlock, Usage

        self.requests.append(request)
        assert {t["name"] for t in request["tools"]} >= {"search", "rerank"}
        assert all(t["input_schema"]["type"] == "object" for t in request["tools"])
        turn = len(self.requests)
        usage = Usage(input_tokens=100 * turn, output_tokens=10)
        if turn == 1:
            content = [ToolUseBlock(type="tool_use", id="t1", name="search", input={
                "collection": "shop-listings", "query": "waterproof trail running shoes", "top_k": 2,
                "filter": {"category": "Sports"}})]
        elif turn == 2:
            content = [ToolUseBlock(type="tool_use", id="t2", name="search", input={
                "collection": "shop-listings", "query": "cordless vacuum cleaner", "top_k": 1})]
        else:
            results = [m for m in request["messages"] if m["role"] == "user" and isinstance(m["content"], list)]
            ids = [h["id"] for m in results for r in m["content"] for h in json.loads(r["content"])["results"]]
            content = [TextBlock(type="text", text="Try " + ", ".join(ids))]
        return Message(id=f"m{turn}", type="message", role="assistant", model=request["model"], content=content,
                       stop_reason="end_turn" if turn > 2 else "tool_use", stop_sequence=None, usage=usage)


@pytest.mark.anyio
async def test_shop_agent_plumbing_with_a_scripted_llm(server):
    import shop_agent

    lines: list[str] = []
    llm = ScriptedClaude()
    assert await shop_agent.main(f"{server}/mcp", llm=llm, out=lines.append) == 0
    text = "\n".join(lines)
    assert "indexed 24 listings into 'shop-listings'" in text
    answer = next(line for line in lines if line.startswith("assistant: "))
    assert "L08" in answer  # the Salomon trail shoes, found by search within category Sports
    assert "L23" in answer  # the Dyson cordless vacuum
    with_tools = next(line for line in lines if line.startswith("context with"))
    without = next(line for line in lines if line.startswith("context without"))
    tokens = [int(s.split("≈")[1].split()[0]) for s in (with_tools, without)]
    assert tokens[0] * 2 < tokens[1]  # the tools keep the context well under half of reading everything
    assert "input tokens reported by the API over all turns (tool schemas included): 600" in text
    tool_results = [m for m in llm.requests[-1]["messages"] if m["role"] == "user" and isinstance(m["content"], list)]
    assert len(tool_results) == 2 and not any(r["is_error"] for m in tool_results for r in m["content"])


@pytest.mark.slow
def test_shop_agent_script_exits_cleanly_without_a_key(server):
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    out = subprocess.run([sys.executable, str(EXAMPLES / "shop_agent.py"), f"{server}/mcp"], capture_output=True,
                         text=True, env=env, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("ANTHROPIC_API_KEY is not set")  # the pipeline ran
    assert "indexed 24 listings" in out.stdout and "Traceback" not in out.stderr


def test_chroma_embedding_function(server):
    from chroma_example import run

    assert run(server)[0].endswith("Opened electronics can be returned within 30 days.")


def test_langchain_embeddings(server):
    from langchain_example import run

    from sie_mcp.integrations.langchain import SieEmbeddings

    assert run(server)[0].endswith("Free shipping on EU orders over 50 EUR.")
    emb = SieEmbeddings(url=server)
    assert len(emb.embed_query("x")) == 384 and len(emb.embed_documents(["a", "b"])) == 2


def test_qdrant_example(server):
    from qdrant_example import run

    assert run(server)[0].endswith("The Acme X1 laptop battery lasts eleven hours.")


def test_langchain_mcp_adapters_call_the_tools(server):
    python = REPO / ".venv-langchain" / "bin" / "python"
    assert python.exists(), "run scripts/install_langchain_env.sh (scripts/test.sh does)"
    out = subprocess.run([str(python), str(EXAMPLES / "langchain_mcp_tools.py"), f"{server}/mcp"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    tools, ranked, labels = out.stdout.strip().splitlines()
    assert "search" in tools and "index_documents" in tools
    assert "A cat on a mat." in ranked and '"label"' in labels


@pytest.mark.anyio
@pytest.mark.slow
async def test_claude_configs_work_offline_as_shipped(tmp_path):
    desktop = json.loads((EXAMPLES / "claude_desktop_config.json").read_text())["mcpServers"]["sie-mcp"]
    code = json.loads((EXAMPLES / "claude_code.mcp.json").read_text())["mcpServers"]
    # Claude Code's stdio entry starts the same command; its HTTP entry names the default endpoint.
    assert (code["sie-mcp"]["command"], code["sie-mcp"]["args"]) == (desktop["command"], desktop["args"])
    assert code["sie-mcp-http"] == {"type": "http", "url": "http://127.0.0.1:8080/mcp"}
    command = desktop["command"].replace("/path/to/sie-mcp", str(REPO))
    assert Path(command).exists()
    env = {**os.environ, **desktop.get("env", {}), **code["sie-mcp"].get("env", {}), "SIE_DATA_DIR": str(tmp_path)}
    async with Client(StdioServerParameters(command=command, args=desktop["args"], env=env)) as client:
        ranked = await client.call_tool("rerank", {"query": "cats", "documents": ["a stock", "a cat"]})
        labels = await client.call_tool("classify", {"texts": "pasta", "labels": ["food", "sport"]})
        indexed = await client.call_tool("index_documents", {"collection": "cfg", "documents": ["a cat"]})
    for result in (ranked, labels, indexed):
        assert not result.is_error, result.content[0].text
    assert ranked.structured_content["results"][0]["text"] == "a cat"
