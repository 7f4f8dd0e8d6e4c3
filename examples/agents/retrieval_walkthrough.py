"""Collections end to end over MCP: index a small corpus once, then navigate it by search, filter and rerank.

    .venv/bin/sie-tools serve --transport http &
    python examples/agents/retrieval_walkthrough.py http://127.0.0.1:8080/mcp
    python examples/agents/retrieval_walkthrough.py            # starts `sie-tools serve` over stdio

Every step prints the text an agent would receive (what costs context), so you can see it stay small.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

COLLECTION = "walkthrough"
DOCS = [
    {"id": "returns", "text": "Returns: unused items can be returned within 30 days for a full refund. Opened "
                              "electronics are refunded minus a 10% restocking fee.",
     "metadata": {"topic": "policy", "year": 2025}},
    {"id": "shipping", "text": "Shipping: orders over 50 EUR ship free within the EU; express delivery takes "
                               "one to two working days.", "metadata": {"topic": "policy", "year": 2024}},
    {"id": "warranty", "text": "Warranty: every laptop and phone has a two-year warranty covering defects, "
                               "not accidental damage such as a cracked screen.",
     "metadata": {"topic": "policy", "year": 2025}},
    {"id": "x1-review", "text": "Review of the Acme X1: the battery lasts eleven hours and the keyboard is "
                                "excellent, but the webcam is poor.", "metadata": {"topic": "review", "year": 2025}},
    {"id": "tab-review", "text": "Review of the Acme Tab 8: a bright screen for reading; the speakers are weak.",
     "metadata": {"topic": "review", "year": 2024}},
]


async def main(target: str | None, out=print) -> None:
    server = target or StdioServerParameters(command=str(Path(sys.executable).with_name("sie-tools")), args=["serve"])
    async with Client(server) as client:
        async def step(title: str, tool: str, args: dict) -> None:
            result = await client.call_tool(tool, args)
            text = result.content[0].text
            out(f"$ {tool} {title}\n{text}\n({len(text)} characters)\n")

        await step("(5 documents)", "index_documents", {"collection": COLLECTION, "documents": DOCS})
        await step("'can I send back a laptop I opened?'", "search",
                   {"collection": COLLECTION, "query": "can I send back a laptop I opened?", "top_k": 2})
        await step("reviews only", "search", {"collection": COLLECTION, "query": "battery life",
                                              "top_k": 2, "filter": {"topic": "review"}})
        await step("2025 policies, reranked, full text", "search",
                   {"collection": COLLECTION, "query": "is a broken screen covered?", "top_k": 1,
                    "filter": {"topic": "policy", "year": {"$gte": 2025}}, "rerank": True, "return_text": True})
        await step("", "list_collections", {})
        await step(COLLECTION, "delete_collection", {"collection": COLLECTION})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
