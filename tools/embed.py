"""embed: texts -> vectors."""

from __future__ import annotations

import torch

from engine.model import EmbeddingOutput
from engine.registry import Task
from tools.context import ToolContext, as_texts, chunks, run_together, tool_model
from tools.schemas import EmbedResult, SparseEmbedding
from tools.wire import as_float32

NO_VECTORS = as_float32([])  # `embeddings` of a sparse or multi-vector result


async def embed_texts(ctx: ToolContext, model: str, texts: list[str], kind: str | None = None,
                      normalize: bool | None = None, dimensions: int | None = None) -> EmbeddingOutput:
    """Embed in progress-reporting chunks, submitted together so the scheduler batches them as one."""
    parts = chunks(texts)
    if len(parts) == 1:
        return await ctx.engine.embed(model, texts, kind, normalize, dimensions)
    done = 0

    async def one(part):
        nonlocal done
        out = await ctx.engine.embed(model, part, kind, normalize, dimensions)
        done += len(part)
        await ctx.report(done, len(texts), f"embedded {done}/{len(texts)} texts")
        return out

    async with ctx.engine.scheduler.admitted(model):  # the chunks share one admission: the call counts once
        outs = await run_together([one(p) for p in parts])
    return EmbeddingOutput(torch.cat([o.vectors for o in outs]), [n for o in outs for n in o.token_counts],
                           [t for o in outs for t in o.truncated])


async def embed(ctx: ToolContext, texts: str | list[str], model: str | None = None, kind: str | None = None,
                dimensions: int | None = None, normalize: bool | None = None) -> EmbedResult:
    items = as_texts(texts, ctx.limits)
    model_id = tool_model(ctx, "embed", model, ctx.defaults.embed_model)
    info = await ctx.engine.info(model_id)
    if info.task is Task.SPARSE_EMBED:
        sparse = await ctx.engine.sparse_embed(model_id, items)
        return EmbedResult(model=model_id, representation="sparse", dimensions=info.output_dim, normalized=False,
                           embeddings=NO_VECTORS, sparse_embeddings=[SparseEmbedding(token_ids=v.token_ids, weights=v.weights,
                                                                             tokens=v.tokens) for v in sparse.vectors],
                           token_counts=sparse.token_counts, truncated=sparse.truncated)
    if info.task is Task.MULTI_VECTOR:
        multi = await ctx.engine.multi_vector(model_id, items, kind)
        return EmbedResult(model=model_id, representation="multi_vector", dimensions=info.output_dim,
                           normalized=True, embeddings=NO_VECTORS,
                           multi_vector_embeddings=[as_float32(v) for v in multi.vectors],
                           token_counts=multi.token_counts, truncated=multi.truncated)
    if dimensions is not None:  # more dimensions than the model has: all of them (nothing to truncate)
        dimensions = min(dimensions, info.output_dim)
    out = await embed_texts(ctx, model_id, items, kind, normalize, dimensions)
    return EmbedResult(model=model_id, representation="dense", dimensions=out.vectors.shape[1],
                       normalized=info.normalize if normalize is None else normalize,
                       embeddings=as_float32(out.vectors), token_counts=out.token_counts, truncated=out.truncated)
