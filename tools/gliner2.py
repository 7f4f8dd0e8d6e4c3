"""GLiNER2 tasks, protocol-free: entities, relations, structured extraction and classification from one
schema-driven span model (engine.models.gliner2). Every call sends all its texts with one schema; the engine
packs them and reads long texts in windows.

Structure fields follow gliner2's syntax, `name[::dtype][::[choice|choice…]][::description]`:
`buyer` (every span), `target::str` (the best span), `kind::[merger|acquisition]` (one of the choices; `::list`
for several), `price::str::the amount paid` (a description the model reads). Bad input raises InvalidInput /
InputTooLong naming the argument and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.errors import InputTooLong, InvalidInput, UnsupportedTask
from engine.gliner2_decoding import SpanValue, TextResult
from engine.models.gliner2_prompt import Field, Gliner2Schema, SchemaTask, TaskKind
from engine.tasks import Task
from tools.context import ToolContext, as_texts, tool_model
from tools.extraction_schemas import (MAX_NAME_CHARS, MAX_NAMES, ExtractResult, FieldValue, Relation, RelationsResult,
                                      SpanRef)
from tools.schemas import ClassifyResult, EntitiesResult, Entity, LabelScore

DEFAULT_THRESHOLD = 0.5  # gliner2's
CLASSIFY_TASK = "classification"  # the task name in the prompt for classify's flat labels
DEFAULT_EXTRACT_MODEL = "gliner2-base-v1"


def _names(values: Any, what: str, example: str) -> list[str]:
    """A list of distinct, non-empty, short strings (labels, relation types)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)) or not values:
        raise InvalidInput(f"{what} must be a non-empty list of strings, e.g. {example}")
    if len(values) > MAX_NAMES:
        raise InputTooLong(f"{what} has {len(values)} items; the limit is {MAX_NAMES} per call: split the call")
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v.strip():
            raise InvalidInput(f"{what}[{i}] must be a non-empty string, e.g. {example}")
        if len(v) > MAX_NAME_CHARS:
            raise InputTooLong(f"{what}[{i}] has {len(v)} characters; the limit is {MAX_NAME_CHARS}")
    return list(dict.fromkeys(values))


def parse_field(spec: Any, where: str) -> Field:
    """gliner2's `_parse_field_spec` for a string, refusing what it would silently misread."""
    hint = "write it as name, name::str, name::[a|b] or name::str::description"
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInput(f"{where} must be a non-empty string; {hint}")
    if len(spec) > MAX_NAME_CHARS * 4:
        raise InputTooLong(f"{where} has {len(spec)} characters; the limit is {MAX_NAME_CHARS * 4}")
    name, *parts = spec.split("::")
    if not name.strip() or "[" in name:
        raise InvalidInput(f"{where} ({spec!r}) has no field name before '::'; {hint}")
    dtype, choices, description = None, None, None
    for part in parts:
        if part in ("str", "list"):
            if dtype is not None:
                raise InvalidInput(f"{where} ({spec!r}) names its type twice; {hint}")
            dtype = part
        elif part.startswith("[") or part.endswith("]"):
            options = [c.strip() for c in part[1:-1].split("|")]
            if not (part.startswith("[") and part.endswith("]")) or not all(options) or choices is not None:
                raise InvalidInput(f"{where} ({spec!r}) has a malformed choice list {part!r}; choices are written "
                                   "[a|b|c], once, with no empty choice")
            choices = tuple(options)
        elif not part.strip():
            raise InvalidInput(f"{where} ({spec!r}) has an empty part between '::'; {hint}")
        elif description is not None:
            raise InvalidInput(f"{where} ({spec!r}) has two descriptions ({description!r}, {part!r}); the type is "
                               f"str or list; {hint}")
        else:
            description = part
    return Field(name, dtype or ("str" if choices else "list"), choices, description)


def structures_schema(schema: Any) -> Gliner2Schema:
    """{"deal": ["buyer", "target::str", "kind::[merger|acquisition]"], …} -> the engine's schema."""
    if not isinstance(schema, Mapping) or not schema:
        raise InvalidInput('schema must be an object of structures, e.g. {"deal": ["buyer", "target", '
                           '"price::str", "kind::[merger|acquisition]::str"]}')
    if len(schema) > MAX_NAMES:
        raise InputTooLong(f"schema has {len(schema)} structures; the limit is {MAX_NAMES} per call")
    tasks = []
    for name, fields in schema.items():
        where = f"schema[{name!r}]"
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise InvalidInput(f"{where}: a structure's name must be a non-empty string of at most "
                               f"{MAX_NAME_CHARS} characters")
        if not isinstance(fields, (list, tuple)) or not fields:
            raise InvalidInput(f"{where} must be a non-empty list of field specs, e.g. [\"buyer\", \"price::str\"]")
        if len(fields) > MAX_NAMES:
            raise InputTooLong(f"{where} has {len(fields)} fields; the limit is {MAX_NAMES}")
        parsed = [parse_field(f, f"{where}[{i}]") for i, f in enumerate(fields)]
        seen = [f.name for f in parsed]
        if len(set(seen)) != len(seen):
            raise InvalidInput(f"{where} names a field twice: {', '.join(sorted({n for n in seen if seen.count(n) > 1}))}")
        tasks.append(SchemaTask(TaskKind.STRUCTURE, name, tuple(parsed)))
    return Gliner2Schema(tuple(tasks))


def entities_schema(labels: Sequence[str]) -> Gliner2Schema:
    return Gliner2Schema((SchemaTask(TaskKind.ENTITIES, "entities", tuple(Field(x) for x in labels)),))


def relations_schema(relations: Sequence[str]) -> Gliner2Schema:
    return Gliner2Schema(tuple(SchemaTask(TaskKind.RELATIONS, r, (Field("head"), Field("tail"))) for r in relations))


def entities_relations_schema(labels: Sequence[str], relations: Sequence[str]) -> Gliner2Schema:
    """Entity types and relation types in one schema: one forward finds both."""
    return Gliner2Schema(entities_schema(labels).tasks + relations_schema(relations).tasks)


def classification_schema(labels: Sequence[str], multi_label: bool = False, cls_threshold: float = 0.5,
                          task: str = CLASSIFY_TASK) -> Gliner2Schema:
    return Gliner2Schema((SchemaTask(TaskKind.CLASSIFICATION, task, tuple(Field(x) for x in labels),
                                     multi_label=multi_label, cls_threshold=cls_threshold),))


def _threshold(threshold: float | None) -> float:
    value = DEFAULT_THRESHOLD if threshold is None else threshold
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"threshold must be a number in [0, 1], got {threshold!r}")
    return float(value)


async def _run(ctx: ToolContext, texts: str | Sequence[str], model_id: str, schema: Gliner2Schema,
               threshold: float | None) -> tuple[list[str], list[TextResult]]:
    items = as_texts(texts if isinstance(texts, str) else list(texts), ctx.limits)
    info = await ctx.engine.info(model_id)
    if info.task is not Task.SCHEMA_EXTRACTION:
        raise UnsupportedTask(f"model {model_id} computes {info.task.value}; this tool needs a GLiNER2 model "
                              "(task extract in list_models)")
    return items, await ctx.engine.schema_extract(model_id, items, schema, _threshold(threshold))


def _span(v: SpanValue) -> SpanRef:
    return SpanRef(text=v.text, start=v.start or 0, end=v.end or 0, score=v.score)


async def gliner2_entities(ctx: ToolContext, texts: str | Sequence[str], model_id: str, labels: Sequence[str],
                           threshold: float | None = None) -> EntitiesResult:
    """extract_entities on a GLiNER2 model (tools.entities dispatches here): the same result as GLiNER's."""
    names = _names(labels, "labels", '["person", "company"]')
    items, out = await _run(ctx, texts, model_id, entities_schema(names), threshold)
    entities = [[Entity(text=e.text, label=e.label, score=e.score, start=e.start, end=e.end) for e in r.entities]
                for r in out]
    return EntitiesResult(model=model_id, method="zero-shot", entities=entities, truncated=[False] * len(items))


async def gliner2_entities_relations(ctx: ToolContext, texts: Sequence[str], model_id: str, labels: Sequence[str],
                                     relations: Sequence[str], threshold: float | None = None) -> list[TextResult]:
    """Each text's entities (of `labels`) and relations (of `relations`) from one schema, so one forward per
    text: what build_ontology reads from a GLiNER2 model given relations."""
    schema = entities_relations_schema(_names(labels, "labels", '["person", "company"]'),
                                       _names(relations, "relations", '["works for", "founded"]'))
    return (await _run(ctx, texts, model_id, schema, threshold))[1]


async def extract_relations(ctx: ToolContext, texts: str | list[str], relations: list[str],
                            model: str | None = None, threshold: float | None = None) -> RelationsResult:
    """Per text, the (head, tail) pairs of each relation type named in `relations`."""
    names = _names(relations, "relations", '["works for", "founded", "located in"]')
    model_id = tool_model(ctx, "extract_relations", model, DEFAULT_EXTRACT_MODEL)
    _, out = await _run(ctx, texts, model_id, relations_schema(names), threshold)
    return RelationsResult(model=model_id, relations=[
        [Relation(relation=r.relation, head=_span(r.head), tail=_span(r.tail)) for r in res.relations]
        for res in out])


async def extract(ctx: ToolContext, texts: str | list[str], schema: dict[str, list[str]], model: str | None = None,
                  threshold: float | None = None) -> ExtractResult:
    """Per text, the instances of each structure in `schema` with their fields' values."""
    parsed = structures_schema(schema)
    model_id = tool_model(ctx, "extract", model, DEFAULT_EXTRACT_MODEL)
    _, out = await _run(ctx, texts, model_id, parsed, threshold)
    results = []
    for res in out:
        results.append({task.name: [{name: [FieldValue(text=v.text, start=v.start, end=v.end, score=v.score)
                                             for v in values] for name, values in inst.items()}
                                    for inst in res.structures.get(task.name, [])]
                        for task in parsed.tasks})
    return ExtractResult(model=model_id, results=results)


async def gliner2_classify(ctx: ToolContext, texts: str | Sequence[str], model_id: str, labels: Sequence[str],
                           multi_label: bool = False, top_k: int = 3) -> ClassifyResult:
    """classify on a GLiNER2 model (tools.classify dispatches here). Single-label: every label by softmax
    probability, best first (at most top_k). Multi-label: the labels whose probability is at least 0.5 (at
    least the best one), best first."""
    names = _names(labels, "labels", '["billing", "bug report", "praise"]')
    _, out = await _run(ctx, texts, model_id, classification_schema(names, multi_label), None)
    results, confidence = [], []
    for res in out:
        ranked = res.classifications.get(CLASSIFY_TASK, [])
        shown = ranked if multi_label else ranked[:top_k]
        results.append([LabelScore(label=name, path=[name], score=p) for name, p in shown])
        confidence.append(round(ranked[0][1] - ranked[1][1], 4) if len(ranked) > 1 else
                          round(ranked[0][1], 4) if ranked else 0.0)
    return ClassifyResult(model=model_id, method="gliner2", results=results, confidence=confidence)
