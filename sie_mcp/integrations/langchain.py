"""A LangChain `Embeddings` backed by a running sie-mcp (sync and async).

    from sie_mcp.integrations.langchain import SieEmbeddings

    embeddings = SieEmbeddings(url="http://127.0.0.1:8080")
    vectors = embeddings.embed_documents(["A cat sat on the mat."])
    query = embeddings.embed_query("kittens")

Works wherever LangChain takes an `Embeddings` (vector stores, retrievers). For sie-mcp's other tools
(rerank, extract_entities, classify, search) as LangChain tools, use `langchain-mcp-adapters` on its MCP
endpoint: examples/agents/README.md.
"""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from sie_mcp.integrations._client import DEFAULT_URL, aembed, embed


class SieEmbeddings(Embeddings):
    def __init__(self, url: str = DEFAULT_URL, model: str | None = None, timeout: float = 120.0,
                 headers: dict[str, str] | None = None) -> None:
        self.url, self.model, self.timeout, self.headers = url, model, timeout, headers

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return embed(self.url, texts, self.model, "document", self.timeout, self.headers)

    def embed_query(self, text: str) -> list[float]:
        return embed(self.url, [text], self.model, "query", self.timeout, self.headers)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await aembed(self.url, texts, self.model, "document", self.timeout, self.headers)

    async def aembed_query(self, text: str) -> list[float]:
        return (await aembed(self.url, [text], self.model, "query", self.timeout, self.headers))[0]
