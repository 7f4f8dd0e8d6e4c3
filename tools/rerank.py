"""rerank: a query and documents -> documents ranked by relevance."""

from __future__ import annotations

import torch

from engine.errors import InvalidInput
from engine.heads.colbert import maxsim
from engine.heads.splade import sparse_dot
from engine.registry import Task
from tools.context import ToolContext, as_texts, tool_model
from tools.embed import embed_texts
from tools.nli import relevance
from tools.schemas import RankedDocument, RerankResult, snippet

# The caller sent the documents and gets their indices back: a snippet only has to say which one it is.
RERANK_SNIPPET_CHARS = 80


async def rerank(ctx: ToolContext, query: str, documents: list[str], model: str | None = None,
                 top_k: int | None = None, return_documents: bool = False) -> RerankResult:
    if not isinstance(query, str) or not query:
        raise InvalidInput("query must be a non-empty string")
    as_texts(query, ctx.limits, "query")
    docs = as_texts(documents, ctx.limits, "documents", max_items=ctx.limits.max_documents)
    if top_k is not None and top_k < 1:
        raise InvalidInput("top_k must be at least 1")
    model_id = tool_model(ctx, "rerank", model, ctx.defaults.rerank_model or ctx.defaults.embed_model)
    info = await ctx.engine.info(model_id)
    if info.task is Task.SEQUENCE_CLASSIFICATION:
        out = await ctx.engine.classify(model_id, [query] * len(docs), docs)
        scores, truncated, method = relevance(out.logits, info.labels), out.truncated, "cross-encoder"
    elif info.task is Task.MULTI_VECTOR:
        q = await ctx.engine.multi_vector(model_id, [query], kind="query")
        d = await ctx.engine.multi_vector(model_id, docs, kind="document")
        scores, truncated, method = maxsim(q.vectors[0], d.vectors), d.truncated, "late-interaction"
    elif info.task is Task.SPARSE_EMBED:
        q = await ctx.engine.sparse_embed(model_id, [query], top_k=None)
        d = await ctx.engine.sparse_embed(model_id, docs, top_k=None)
        scores = torch.tensor([sparse_dot(q.vectors[0], v) for v in d.vectors])
        truncated, method = d.truncated, "sparse-dot"
    else:
        q = await ctx.engine.embed(model_id, [query], kind="query", normalize=True)
        d = await embed_texts(ctx, model_id, docs, kind="document", normalize=True)
        scores, truncated, method = (d.vectors @ q.vectors[0]), d.truncated, "embedding-cosine"
    order = torch.argsort(scores, descending=True, stable=True).tolist()[: top_k or len(docs)]
    return RerankResult(model=model_id, method=method, truncated=truncated,
                        results=[RankedDocument(index=i, score=float(scores[i]),
                                                text=docs[i] if return_documents else snippet(docs[i], RERANK_SNIPPET_CHARS))
                                 for i in order])
