"""Qdrant with sie-mcp's embeddings: sie-tools embeds (HTTP API), Qdrant stores and searches.

    .venv/bin/sie-tools serve --transport http &
    python examples/agents/qdrant_example.py http://127.0.0.1:8080
    python examples/agents/qdrant_example.py http://127.0.0.1:8080 --qdrant-url http://localhost:6333

Without --qdrant-url, Qdrant runs in memory in this process (qdrant-client's local mode).
"""

from __future__ import annotations

import argparse

from qdrant_client import QdrantClient, models

from sie_mcp.integrations._client import embed

PASSAGES = ["The Acme X1 laptop battery lasts eleven hours.", "Free shipping on EU orders over 50 EUR.",
            "Opened electronics can be returned within 30 days.", "The Tab 8 tablet has a bright screen."]


def run(sie_url: str, qdrant_url: str | None = None, query: str = "how long does the battery last?") -> list[str]:
    vectors = embed(sie_url, PASSAGES, kind="document")
    qdrant = QdrantClient(url=qdrant_url) if qdrant_url else QdrantClient(":memory:")
    if qdrant.collection_exists("passages"):
        qdrant.delete_collection("passages")
    qdrant.create_collection("passages", vectors_config=models.VectorParams(size=len(vectors[0]),
                                                                             distance=models.Distance.COSINE))
    qdrant.upsert("passages", points=[models.PointStruct(id=i, vector=v, payload={"text": t})
                                      for i, (t, v) in enumerate(zip(PASSAGES, vectors, strict=True))])
    hits = qdrant.query_points("passages", query=embed(sie_url, [query], kind="query")[0], limit=2).points
    return [f"{h.score:.3f}  {h.payload['text']}" for h in hits]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("sie_url", nargs="?", default="http://127.0.0.1:8080")
    ap.add_argument("--qdrant-url", default=None)
    args = ap.parse_args()
    print("\n".join(run(args.sie_url, args.qdrant_url)))
