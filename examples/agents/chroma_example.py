"""Chroma with sie-mcp as its embedding function.

    .venv/bin/sie-tools serve --transport http &
    python examples/agents/chroma_example.py http://127.0.0.1:8080
"""

from __future__ import annotations

import sys

import chromadb
from chromadb.config import Settings

from sie_mcp.integrations.chroma import SieEmbeddingFunction

PASSAGES = ["The Acme X1 laptop battery lasts eleven hours.", "Free shipping on EU orders over 50 EUR.",
            "Opened electronics can be returned within 30 days.", "The Tab 8 tablet has a bright screen."]


def run(sie_url: str, query: str = "can I return an opened phone?") -> list[str]:
    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("passages", embedding_function=SieEmbeddingFunction(sie_url),
                                          configuration={"hnsw": {"space": "cosine"}})
    collection.add(ids=[str(i) for i in range(len(PASSAGES))], documents=PASSAGES)
    found = collection.query(query_texts=[query], n_results=2)
    return [f"{1 - d:.3f}  {t}" for t, d in zip(found["documents"][0], found["distances"][0], strict=True)]


if __name__ == "__main__":
    print("\n".join(run(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080")))
