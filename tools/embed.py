"""embed: texts -> vectors."""

from __future__ import annotations

import asyncio

import torch

from engine.model import EmbeddingOutput
from tools.context import ToolContext, as_texts, chunks
from tools.schemas import EmbedResult


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

    outs = await asyncio.gather(*(one(p) for p in parts))
    return EmbeddingOutput(torch.cat([o.vectors for o in outs]), [n for o in outs for n in o.token_counts],
                           [t for o in outs for t in o.truncated])


async def embed(ctx: ToolContext, texts: str | list[str], model: str | None = None, kind: str | None = None,
                dimensions: int | None = None, normalize: bool | None = None) -> EmbedResult:
    items = as_texts(texts, ctx.limits)
    model_id = ctx.engine.entry(model or ctx.defaults.embed_model).id
    out = await embed_texts(ctx, model_id, items, kind, normalize, dimensions)
    info = await ctx.engine.info(model_id)
    return EmbedResult(model=model_id, dimensions=out.vectors.shape[1],
                       normalized=info.normalize if normalize is None else normalize,
                       embeddings=out.vectors.tolist(), token_counts=out.token_counts, truncated=out.truncated)
