"""A Chroma `EmbeddingFunction` backed by a running sie-mcp.

    import chromadb
    from sie_mcp.integrations.chroma import SieEmbeddingFunction

    collection = chromadb.Client().create_collection(
        "docs", embedding_function=SieEmbeddingFunction("http://127.0.0.1:8080"))
    collection.add(ids=["a"], documents=["A cat sat on the mat."])
    collection.query(query_texts=["kittens"], n_results=1)

Documents are embedded as documents and queries as queries (`kind`), which matters for models with
query/passage prompts (e5, bge). The function's config (url, model) is persisted with the collection, so
a collection reopened later finds its embedder again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from sie_mcp.integrations._client import DEFAULT_URL, embed


class SieEmbeddingFunction(EmbeddingFunction[Documents]):
    def __init__(self, url: str = DEFAULT_URL, model: str | None = None, timeout: float = 120.0) -> None:
        self.url, self.model, self.timeout = url, model, timeout

    def __call__(self, input: Documents) -> Embeddings:
        return self._embed(input, "document")

    def embed_query(self, input: Documents) -> Embeddings:
        return self._embed(input, "query")

    def _embed(self, texts: Documents, kind: str) -> Embeddings:
        return [np.asarray(v, dtype=np.float32) for v in embed(self.url, list(texts), self.model, kind, self.timeout)]

    @staticmethod
    def name() -> str:
        return "sie-mcp"

    def get_config(self) -> dict[str, Any]:
        return {"url": self.url, "model": self.model, "timeout": self.timeout}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> SieEmbeddingFunction:
        return SieEmbeddingFunction(**config)

    def default_space(self) -> str:
        return "cosine"
