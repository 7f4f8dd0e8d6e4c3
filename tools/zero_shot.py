"""extract_entities on a zero-shot model (GLiNER): the entity types are whatever labels the caller names."""

from __future__ import annotations

from engine.errors import InvalidInput
from tools.context import ToolContext
from tools.schemas import EntitiesResult, Entity

DEFAULT_THRESHOLD = 0.5  # gliner's


async def extract_zero_shot(ctx: ToolContext, texts: list[str], model_id: str, labels: list[str] | None,
                            threshold: float | None = None, nested: bool = False, multi_label: bool = False
                            ) -> EntitiesResult:
    if not labels:
        raise InvalidInput(f"model {model_id} is a zero-shot model: it finds the entity types you name. Pass "
                           "labels, e.g. ['person', 'company', 'price']")
    out = await ctx.engine.zero_shot_entities(model_id, texts, labels,
                                              threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                                              flat=not nested, multi_label=multi_label)
    entities = [[Entity(text=e.text, label=e.label, score=round(e.score, 3), start=e.start, end=e.end)
                 for e in found] for found in out.entities]
    # Long texts run as overlapping windows, so nothing is cut off.
    return EntitiesResult(model=model_id, method="zero-shot", entities=entities, truncated=[False] * len(texts))
