"""Collections: index documents once, then let an agent search them by meaning without reading them.

index_documents chunks each document (tools/chunking.py, with offsets), embeds the chunks as documents
and stores them in the vector store (tools/vector_store.py) under the collection; a document that is
indexed again under the same id replaces its old chunks. search embeds the query with the collection's
model, takes the nearest chunks (with an optional metadata filter), and can re-score a wider candidate
set with the rerank model as a second stage. Results carry ids, scores, offsets and snippets: the agent
reads a few lines, then asks for more only where it matters.
"""

from __future__ import annotations

import hashlib
from typing import Any

from engine.errors import InvalidInput
from tools.errors import StoreUnavailable
from tools.chunking import Chunk, chunk_text
from tools.context import ToolContext, as_texts, tool_model
from tools.embed import embed_texts
from tools.rerank import rerank as rerank_texts
from tools.schemas import (
    CollectionCard,
    CollectionsResult,
    DeleteResult,
    IndexResult,
    SearchHit,
    SearchResult,
    snippet,
)
from tools.vector_store import ChunkRecord, StoredChunk, VectorStore, check_metadata, check_name, chroma_filter

MAX_TOP_K = 100
EMPTY = Chunk(0, 0, "")  # an empty document is still one chunk: findable by its id and metadata
RERANK_CANDIDATES = 4  # a second stage re-scores top_k × this many nearest chunks (at least 20, at most 200)


def _store(ctx: ToolContext) -> VectorStore:
    if ctx.store is None:
        raise StoreUnavailable("collections are not enabled on this server")
    return ctx.store


def _document(item: Any, i: int) -> tuple[str | None, str, dict[str, Any]]:
    if isinstance(item, str):
        return None, item, {}
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise InvalidInput(f"documents[{i}] must be a string or an object with a 'text' string "
                           "(and optional 'id' and 'metadata')")
    unknown = set(item) - {"id", "text", "metadata"}
    if unknown:
        raise InvalidInput(f"documents[{i}] has unknown fields {sorted(unknown)}; use id, text, metadata")
    doc_id = item.get("id")
    if doc_id is not None and (not isinstance(doc_id, str) or not doc_id or len(doc_id) > 256):
        raise InvalidInput(f"documents[{i}].id must be a non-empty string of at most 256 characters")
    return doc_id, item["text"], check_metadata(item.get("metadata"), f"documents[{i}].metadata")


async def index_documents(ctx: ToolContext, collection: str, documents: list[Any],
                          model: str | None = None) -> IndexResult:
    store = _store(ctx)
    check_name(collection)
    if not isinstance(documents, list) or not documents:
        raise InvalidInput("documents is empty: send at least one document")
    parsed = [_document(d, i) for i, d in enumerate(documents)]
    as_texts([text for _, text, _ in parsed], ctx.limits, "documents")  # count and length limits
    model_id = tool_model(ctx, "index_documents", model, ctx.defaults.embed_model)
    ids = [doc_id or hashlib.sha1(text.encode()).hexdigest()[:16] for doc_id, text, _ in parsed]
    if len(set(ids)) != len(ids):
        raise InvalidInput("two documents share an id; ids must be unique within a call")
    records = [ChunkRecord(doc_id, n, c.start, c.end, c.text, metadata)
               for doc_id, (_, text, metadata) in zip(ids, parsed, strict=True)
               for n, c in enumerate(chunk_text(text) or [EMPTY])]
    out = await embed_texts(ctx, model_id, [r.text for r in records], kind="document", normalize=True)
    vectors = out.vectors.float().cpu().numpy()  # [chunks, D]
    info = await store.upsert(collection, model_id, vectors.shape[1], records, vectors)
    return IndexResult(collection=collection, model=model_id, documents=len(ids), chunks=len(records), ids=ids,
                       collection_chunks=info.chunks)


async def search(ctx: ToolContext, collection: str, query: str, top_k: int = 5, filter: dict[str, Any] | None = None,
                 rerank: bool = False, rerank_model: str | None = None, return_text: bool = False) -> SearchResult:
    store = _store(ctx)
    check_name(collection)
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query must be a non-empty string")
    as_texts(query, ctx.limits, "query")
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}")
    chroma_filter(filter)  # a malformed filter is refused before the query is embedded
    model_id = (await store.info(collection)).model
    q = (await ctx.engine.embed(model_id, [query], kind="query", normalize=True)).vectors[0]
    # Reranked: a wider set of candidates, within what one rerank call takes (--max-documents).
    k = min(200, max(20, top_k * RERANK_CANDIDATES), ctx.limits.max_documents) if rerank else top_k
    _, hits = await store.query(collection, q.float().cpu().numpy(), k, filter)
    method = "vector"
    if rerank and hits:
        ranked = await rerank_texts(ctx, query, [h.text or " " for h in hits], model=rerank_model, top_k=top_k)
        results = [_hit(hits[r.index], r.score, return_text) for r in ranked.results]
        method = f"vector+{ranked.method}"
    else:
        results = [_hit(h, h.score, return_text) for h in hits[:top_k]]
    return SearchResult(collection=collection, model=model_id, method=method, results=results)


def _hit(h: StoredChunk, score: float, full: bool) -> SearchHit:
    return SearchHit(id=h.id, chunk=h.chunk, score=score, text=h.text if full else snippet(h.text), start=h.start,
                     end=h.end, metadata=h.metadata)


async def list_collections(ctx: ToolContext) -> CollectionsResult:
    infos = await _store(ctx).list()
    return CollectionsResult(collections=[CollectionCard(name=i.name, model=i.model, dimensions=i.dimensions,
                                                         chunks=i.chunks) for i in infos])


async def delete_collection(ctx: ToolContext, collection: str) -> DeleteResult:
    info = await _store(ctx).delete(check_name(collection))
    return DeleteResult(collection=collection, deleted_chunks=info.chunks)
