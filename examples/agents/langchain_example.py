"""LangChain with sie-mcp: `SieEmbeddings` in a LangChain vector store.

    .venv/bin/sie-tools serve --transport http &
    python examples/agents/langchain_example.py http://127.0.0.1:8080

sie-mcp's tools as LangChain tools (langchain-mcp-adapters): examples/agents/langchain_mcp_tools.py.
"""

from __future__ import annotations

import sys

from langchain_core.vectorstores import InMemoryVectorStore

from sie_mcp.integrations.langchain import SieEmbeddings

PASSAGES = ["The Acme X1 laptop battery lasts eleven hours.", "Free shipping on EU orders over 50 EUR.",
            "Opened electronics can be returned within 30 days.", "The Tab 8 tablet has a bright screen."]


def run(sie_url: str, query: str = "what does delivery cost?") -> list[str]:
    store = InMemoryVectorStore.from_texts(PASSAGES, SieEmbeddings(url=sie_url))
    return [f"{score:.3f}  {doc.page_content}" for doc, score in store.similarity_search_with_score(query, k=2)]


if __name__ == "__main__":
    print("\n".join(run(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")))
