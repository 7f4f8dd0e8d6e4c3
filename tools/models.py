"""list_models: the catalog, what each model is for, and whether it is resident."""

from __future__ import annotations

from tools.context import ToolContext
from tools.schemas import ModelCard, ModelsResult


def list_models(ctx: ToolContext) -> ModelsResult:
    d = ctx.defaults
    defaults = {"embed": d.embed_model, "rerank": d.rerank_model or d.embed_model, "extract_entities": d.ner_model,
                "classify": d.classify_model or d.embed_model}
    cards = []
    for model_id in ctx.engine.catalog.ids():
        entry = ctx.engine.catalog.get(model_id)
        uses = [tool for tool, m in defaults.items() if m in (entry.id, entry.hf_id)]
        cards.append(ModelCard(id=entry.id, hf_id=entry.hf_id, task=entry.task, description=entry.description,
                               state=ctx.engine.pool.tier(entry.id).value, pinned=entry.pinned, default_for=uses))
    return ModelsResult(models=cards)
