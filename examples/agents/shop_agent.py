"""An e-commerce agent on sie-mcp: the official `mcp` client for the tools, the `anthropic` SDK for the LLM.

    .venv/bin/sie-tools serve --transport http &                  # or let the script start it over stdio
    ANTHROPIC_API_KEY=... python examples/agents/shop_agent.py http://127.0.0.1:8080/mcp
    python examples/agents/shop_agent.py                        # no key: the pipeline runs, the LLM step is skipped

1. Pipeline (the program calls the tools; no LLM): messy marketplace listings go through
   `extract_entities` (brands, places) and `classify` down a 4-level taxonomy, then into a server-side
   collection with that metadata (`index_documents`).
2. Agent (Claude with sie-mcp's tools): answers a shopper by calling `search` (filters on the category
   the pipeline found, optional rerank) instead of reading the catalogue.
3. Prints the context the LLM received with the tools against what it would have had to read without
   them (every listing and the whole taxonomy), in characters and approximate tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shop_data import LISTINGS, SHOPPER, TAXONOMY

COLLECTION = "shop-listings"
AGENT_TOOLS = ("search", "rerank", "classify", "extract_entities", "list_collections")
SYSTEM = (f"You are a shop assistant. The marketplace listings are in the sie-mcp collection '{COLLECTION}'; "
          "each has metadata: category (top level, e.g. 'Sports'), path (the full category path), brand, place. "
          "Use the search tool (with a filter where it helps) instead of guessing; answer briefly, naming "
          "listing ids.")


def approx_tokens(chars: int) -> int:
    """About four characters per token for English (the estimate both sides of the comparison use)."""
    return math.ceil(chars / 4)


@dataclass
class Context:
    """What entered the LLM's context, by source."""

    tool_results: int = 0  # characters of tool-result text
    tool_calls: list[str] = field(default_factory=list)
    api_input_tokens: int = 0  # as the API reported them (real runs)


def _first(entities: list[dict], labels: set[str]) -> str:
    return next((e["text"] for e in entities if e["label"] in labels), "")


async def build_collection(client: Client) -> dict[str, Any]:
    """The pipeline: entities and a taxonomy path per listing, then one collection with that metadata."""
    found = await client.call_tool("extract_entities", {"texts": LISTINGS})
    if found.is_error:  # e.g. the server's NER model is not available offline: index without brand/place
        print(f"extract_entities failed, indexing without brands and places: {found.content[0].text}",
              file=sys.stderr)
        entities: list[list[dict]] = [[] for _ in LISTINGS]
    else:
        entities = found.structured_content["entities"]
    paths = (await client.call_tool("classify", {"texts": LISTINGS, "taxonomy": TAXONOMY, "top_k": 1,
                                                 "beam": 4})).structured_content["results"]
    docs = []
    for i, (text, ents, best) in enumerate(zip(LISTINGS, entities, paths, strict=True)):
        path = best[0]["path"]
        docs.append({"id": f"L{i:02d}", "text": text, "metadata": {
            "category": path[0], "path": " > ".join(path), "brand": _first(ents, {"ORG", "MISC"}),
            "place": _first(ents, {"LOC"})}})
    indexed = await client.call_tool("index_documents", {"collection": COLLECTION, "documents": docs})
    if indexed.is_error:
        raise RuntimeError(indexed.content[0].text)
    return {"docs": docs, "indexed": indexed.structured_content}


def anthropic_tools(listed: list[Any]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in listed if t.name in AGENT_TOOLS]


async def answer(llm: Any, client: Client, question: str, model: str, ctx: Context, max_turns: int = 8) -> str:
    """The agent loop: the LLM asks for tools, the MCP client runs them, the results go back as text."""
    tools = anthropic_tools((await client.list_tools()).tools)
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(max_turns):
        reply = await llm.messages.create(model=model, max_tokens=1024, system=SYSTEM, tools=tools,
                                          messages=messages)
        ctx.api_input_tokens += getattr(reply.usage, "input_tokens", 0) or 0
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        calls = [b for b in reply.content if b.type == "tool_use"]
        if not calls:
            return "".join(b.text for b in reply.content if b.type == "text")
        results = []
        for call in calls:
            result = await client.call_tool(call.name, call.input)
            text = "".join(c.text for c in result.content if c.type == "text")
            ctx.tool_results += len(text)
            ctx.tool_calls.append(f"{call.name}({json.dumps(call.input, ensure_ascii=False)})")
            results.append({"type": "tool_result", "tool_use_id": call.id, "content": text,
                            "is_error": bool(result.is_error)})
        messages.append({"role": "user", "content": results})
    return "(stopped after max_turns)"


def report(ctx: Context, question: str, out=print) -> dict[str, int]:
    with_tools = len(SYSTEM) + len(question) + ctx.tool_results
    without = len(SYSTEM) + len(question) + len("\n".join(LISTINGS)) + len(json.dumps(TAXONOMY))
    out(f"context with sie-mcp tools:  {with_tools:6} chars ≈ {approx_tokens(with_tools):5} tokens "
        f"(question, system prompt, {len(ctx.tool_calls)} tool results)")
    out(f"context without tools:       {without:6} chars ≈ {approx_tokens(without):5} tokens "
        f"(every listing and the taxonomy to read; {len(LISTINGS)} listings here, real catalogues are larger)")
    if ctx.api_input_tokens:
        out(f"input tokens reported by the API over all turns (tool schemas included): {ctx.api_input_tokens}")
    return {"with_tools": with_tools, "without_tools": without}


async def main(target: str | None, llm: Any = None, model: str = "claude-sonnet-4-5", out=print) -> int:
    server = target or StdioServerParameters(command=str(Path(sys.executable).with_name("sie-tools")), args=["serve"])
    async with Client(server) as client:
        built = await build_collection(client)
        out(f"indexed {built['indexed']['documents']} listings into '{COLLECTION}'; for example:")
        for doc in built["docs"][:3]:
            out(f"  {doc['id']}  {doc['metadata']['path']:55} brand={doc['metadata']['brand']!r}")
        if llm is None:
            if not os.environ.get("ANTHROPIC_API_KEY"):
                out("ANTHROPIC_API_KEY is not set: the pipeline ran; set it to let Claude answer the shopper.")
                return 0
            from anthropic import AsyncAnthropic

            llm = AsyncAnthropic()
        ctx = Context()
        out(f"shopper: {SHOPPER}")
        reply = await answer(llm, client, SHOPPER, model, ctx)
        for call in ctx.tool_calls:
            out(f"  tool: {call}")
        out(f"assistant: {reply}")
        report(ctx, SHOPPER, out)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server", nargs="?", help="MCP endpoint (default: start `sie-tools serve` over stdio)")
    ap.add_argument("--model", default=os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5"))
    args = ap.parse_args()
    sys.exit(asyncio.run(main(args.server, model=args.model)))
