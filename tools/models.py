"""list_models: the catalog, what each model is for, whether it can be used here, and whether it is resident."""

from __future__ import annotations

from tools.context import ToolContext
from tools.schemas import ModelCard, ModelsResult

# What a catalog task does, where that is more than the task's name.
TASKS_OF = {"extract": ["entities", "relations", "classify", "extract"]}


def list_models(ctx: ToolContext) -> ModelsResult:
    d = ctx.defaults
    defaults = {"embed": d.embed_model, "rerank": d.rerank_model or d.embed_model, "extract_entities": d.ner_model,
                "classify": d.classify_model or d.embed_model}
    cards = []
    for model_id in ctx.engine.catalog.ids():
        entry = ctx.engine.catalog.get(model_id)
        uses = [tool for tool, m in defaults.items() if m in (entry.id, entry.hf_id)]
        availability, note = entry.availability()
        cards.append(ModelCard(id=entry.id, hf_id=entry.hf_id, task=entry.task,
                               tasks=TASKS_OF.get(entry.task, [entry.task]), description=entry.description,
                               state=ctx.engine.pool.tier(entry.id).value, availability=availability, note=note,
                               pinned=entry.pinned, default_for=uses))
    return ModelsResult(models=cards)


async def list_models_async(ctx: ToolContext) -> ModelsResult:
    """list_models as the tool surface calls every tool (a coroutine)."""
    return list_models(ctx)
