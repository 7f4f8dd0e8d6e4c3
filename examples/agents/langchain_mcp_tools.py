"""sie-mcp's MCP tools as LangChain tools, through langchain-mcp-adapters.

    scripts/install_langchain_env.sh          # .venv-langchain: langchain-mcp-adapters needs mcp<2
    .venv/bin/sie-tools serve --transport http &
    .venv-langchain/bin/python examples/agents/langchain_mcp_tools.py http://127.0.0.1:8080/mcp

Hand the tools to any LangChain/LangGraph agent (`create_react_agent(model, tools)`); here they are called
directly, as an agent would call them.
"""

from __future__ import annotations

import asyncio
import sys

from langchain_mcp_adapters.client import MultiServerMCPClient


async def run(mcp_url: str) -> list[str]:
    client = MultiServerMCPClient({"sie": {"transport": "streamable_http", "url": mcp_url}})
    tools = {t.name: t for t in await client.get_tools()}
    ranked = await tools["rerank"].ainvoke({"query": "cats", "documents": ["A stock report.", "A cat on a mat."],
                                            "top_k": 1})
    labels = await tools["classify"].ainvoke({"texts": ["the screen of my laptop is cracked"],
                                              "labels": ["laptop repair", "billing question", "praise"], "top_k": 1})
    return [f"tools: {', '.join(sorted(tools))}", f"rerank: {ranked}", f"classify: {labels}"]


if __name__ == "__main__":
    print("\n".join(asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/mcp"))))
