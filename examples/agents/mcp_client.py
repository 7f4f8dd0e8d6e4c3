"""Call sie-mcp's tools from Python over MCP: a triage pipeline that never reads every document.

    python examples/agents/mcp_client.py                         # starts `sie-tools serve` over stdio
    python examples/agents/mcp_client.py http://127.0.0.1:8080/mcp

Keeps the 3 tickets most relevant to a question (rerank) and files each into a taxonomy (classify):
an agent's context receives six short lines instead of every ticket.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

TICKETS = [
    "My laptop won't charge since the last update, the battery icon shows a cross.",
    "I was billed twice for the annual plan, please refund one charge.",
    "The phone app crashes when I open the camera tab.",
    "Great service, the replacement keyboard arrived in two days!",
    "How do I export my invoices as PDF?",
    "The desktop tower makes a loud fan noise after ten minutes.",
]
TAXONOMY = ["Hardware > Laptops > Power", "Hardware > Desktops > Cooling", "Software > Mobile app > Crashes",
            "Billing > Refunds", "Billing > Invoices", "Feedback > Praise"]


async def main(target: str | None) -> None:
    server = target or StdioServerParameters(command=str(Path(sys.executable).with_name("sie-tools")), args=["serve"])
    async with Client(server) as client:
        ranked = await client.call_tool("rerank", {"query": "hardware problems", "documents": TICKETS, "top_k": 3})
        top = [r["text"] for r in ranked.structured_content["results"]]
        labels = await client.call_tool("classify", {"texts": top, "taxonomy": TAXONOMY, "top_k": 1})
        for text, result in zip(top, labels.structured_content["results"]):
            print(f"{' > '.join(result[0]['path']):35} {text}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
