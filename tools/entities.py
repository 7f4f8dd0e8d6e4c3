"""extract_entities: texts -> entity spans. The path follows the model's task:

- PARSE (a spaCy pipeline, the offline default `en_core_web_sm`): its entities; score 1.0 (see schemas).
- TOKEN_CLASSIFICATION (a transformer tagger): token logits over overlapping windows of the model's max
  length, each window aggregated as transformers' `token-classification` pipeline does with the same
  `aggregation` strategy, then overlapping entities from neighbouring windows merged (the longest wins, then
  the higher score), as that pipeline does with `stride`.
- ZERO_SHOT_NER (GLiNER): entity types come with the call (`labels` required), `threshold` (default 0.5),
  nested spans and multi-label on request.
- SCHEMA_EXTRACTION (GLiNER2): the same, through tools.gliner2 (flat spans per type; no nested/multi_label).
Fixed-label models read `labels` as a filter; `tools.labels` maps everyday words onto both CoNLL (PER, LOC)
and OntoNotes (PERSON, GPE …) type names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from engine.engine import TokenWindow
from engine.errors import InvalidInput, UnsupportedTask
from engine.registry import Task
from tools.context import ToolContext, as_texts, tool_model
from tools.labels import type_names
from tools.gliner2 import gliner2_entities
from tools.schemas import EntitiesResult, Entity
from tools.zero_shot import extract_zero_shot

AGGREGATIONS = ("simple", "first", "average", "max")
# `first`: every word takes the tag of its first piece, so a word is never split into two entities.
DEFAULT_AGGREGATION = "first"
DEFAULT_THRESHOLD = 0.5  # zero-shot models: keep spans scoring above this (gliner's default)

@dataclass
class _Piece:
    """A token (simple) or a word (first/average/max) with its tag and score, as the pipeline groups them."""

    tag: str
    score: float
    start: int
    end: int


def _tag(name: str) -> tuple[str, str]:
    """transformers' get_tag, plus BIOES: 'B-PER'/'S-PER' start an entity; 'I-PER'/'E-PER' continue one;
    anything else ('PER', 'O') continues a run of the same name."""
    if len(name) > 2 and name[1] == "-" and name[0] in "BIESLU":
        return ("B" if name[0] in "BSU" else "I"), name[2:]
    return "I", name


def _pieces(window: TokenWindow, labels: dict[int, str], strategy: str) -> list[_Piece]:
    probs = torch.softmax(window.logits.float(), dim=-1)  # [n, L]
    enc = window.encoded
    tokens = [t for t in range(len(enc)) if not enc.special[t]]
    if strategy == "simple":
        best = probs.max(-1)
        return [_Piece(labels.get(int(best.indices[t]), f"LABEL_{int(best.indices[t])}"), float(best.values[t]),
                       *enc.offsets[t]) for t in tokens]
    words: list[list[int]] = []
    for t in tokens:  # a piece that continues a word joins it
        if words and window.continues[t]:
            words[-1].append(t)
        else:
            words.append([t])
    out = []
    for w in words:
        if strategy == "first":
            scores = probs[w[0]]
        elif strategy == "max":
            scores = probs[max(w, key=lambda t: float(probs[t].max()))]
        else:  # average
            scores = probs[w].mean(0)
        idx = int(scores.argmax())
        out.append(_Piece(labels.get(idx, f"LABEL_{idx}"), float(scores[idx]), enc.offsets[w[0]][0],
                          enc.offsets[w[-1]][1]))
    return out


def _group(pieces: list[_Piece]) -> list[_Piece]:
    """Adjacent pieces of one type form an entity unless a piece begins a new one (B-); 'O' runs dropped."""
    groups: list[list[_Piece]] = []
    for p in pieces:
        bi, kind = _tag(p.tag)
        if groups and bi != "B" and _tag(groups[-1][-1].tag)[1] == kind:
            groups[-1].append(p)
        else:
            groups.append([p])
    out = []
    for g in groups:
        kind = g[0].tag.split("-", 1)[-1]
        if kind == "O":
            continue
        out.append(_Piece(kind, sum(p.score for p in g) / len(g), g[0].start, g[-1].end))
    return out


def _merge_windows(found: list[_Piece]) -> list[_Piece]:
    """Entities from overlapping windows: of overlapping ones the longest, then the higher score, is kept."""
    if not found:
        return found
    found = sorted(found, key=lambda e: e.start)
    merged: list[_Piece] = []
    prev = found[0]
    for e in found:
        if prev.start <= e.start < prev.end:
            longer = e.end - e.start > prev.end - prev.start
            if longer or (e.end - e.start == prev.end - prev.start and e.score > prev.score):
                prev = e
        else:
            merged.append(prev)
            prev = e
    merged.append(prev)
    return merged


def aggregate(text: str, windows: Sequence[TokenWindow], labels: dict[int, str],
              strategy: str = DEFAULT_AGGREGATION) -> list[Entity]:
    """One text's windows of token logits -> entity spans with character offsets into `text`."""
    found = [e for w in windows for e in _group(_pieces(w, labels, strategy))]
    if len(windows) > 1:
        found = _merge_windows(found)
    return [Entity(text=text[e.start:e.end], label=e.tag, score=round(e.score, 4),
                   start=e.start, end=e.end) for e in found]


def _wanted(labels: list[str] | None, model_id: str, model_labels: Sequence[str]) -> set[str] | None:
    """The requested types as the model names them; a type the model cannot produce is an error."""
    if labels is None:
        return None
    if not all(isinstance(x, str) and x.strip() for x in labels):
        raise InvalidInput("labels must be a list of non-empty strings")
    known = {t.split("-", 1)[-1].upper() for t in model_labels} - {"O"}
    wanted: set[str] = set()
    for x in labels:
        names = type_names(x)
        hit = names & known
        if not hit:
            raise InvalidInput(f"model {model_id} has fixed entity types ({', '.join(sorted(known))}); {x!r} is "
                               "neither one of them nor an alias of one. Use those names, or a zero-shot NER "
                               "model for your own types")
        wanted |= hit
    return wanted


async def _zero_shot(ctx: ToolContext, model_id: str, items: list[str], labels: list[str], threshold: float,
                     nested: bool, multi_label: bool) -> EntitiesResult:
    return await extract_zero_shot(ctx, items, model_id, labels, threshold, nested, multi_label)


async def extract_entities(ctx: ToolContext, texts: str | list[str], model: str | None = None,
                           labels: list[str] | None = None, aggregation: str | None = None,
                           threshold: float | None = None, nested: bool = False,
                           multi_label: bool = False) -> EntitiesResult:
    items = as_texts(texts, ctx.limits)
    if labels is not None:  # strings, within the limits, valid Unicode: a lone surrogate never reaches a tokenizer
        labels = as_texts(labels, ctx.limits, "labels", max_items=ctx.limits.max_labels)
        if not all(labels):
            raise InvalidInput("labels must be a list of non-empty strings")
    model_id = tool_model(ctx, "extract_entities", model, ctx.defaults.ner_model)
    info = await ctx.engine.info(model_id)
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise InvalidInput(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    if info.task is Task.SCHEMA_EXTRACTION:
        if not labels:
            raise InvalidInput(f"model {model_id} is a GLiNER2 model: send the entity types to find as labels, e.g. "
                               "['company', 'product', 'price']")
        if nested or multi_label or aggregation is not None:
            raise InvalidInput(f"nested, multi_label and aggregation do not apply to GLiNER2 ({model_id}): each "
                               "entity type's spans never overlap; omit them")
        return await gliner2_entities(ctx, items, model_id, labels, threshold)
    if info.task is Task.ZERO_SHOT_NER:
        if not labels:
            raise InvalidInput(f"model {model_id} is zero-shot: send the entity types to find as labels, e.g. "
                               "['company', 'product', 'price']")
        return await _zero_shot(ctx, model_id, items, labels, DEFAULT_THRESHOLD if threshold is None else threshold,
                                nested, multi_label)
    if threshold is not None or nested or multi_label:
        raise InvalidInput(f"threshold, nested and multi_label apply to zero-shot NER models; {model_id} has fixed "
                           "entity types")
    if info.task is Task.PARSE:
        if aggregation is not None:
            raise InvalidInput(f"aggregation applies to token-classification models; {model_id} is a spaCy pipeline")
        wanted = _wanted(labels, model_id, list(info.labels.values()))
        parses = await ctx.engine.parse(model_id, items)
        per_text = [[Entity(text=e.text, label=e.label, score=e.score, start=e.start, end=e.end)
                     for e in p.entities if wanted is None or e.label in wanted] for p in parses]
        return EntitiesResult(model=model_id, method="spacy", entities=per_text, truncated=[False] * len(items))
    if info.task is not Task.TOKEN_CLASSIFICATION:
        raise UnsupportedTask(f"model {model_id} computes {info.task.value}, not entities; pick an ner model "
                              "(see list_models)")
    strategy = aggregation or DEFAULT_AGGREGATION
    wanted = _wanted(labels, model_id, list(info.labels.values()))
    windows = await ctx.engine.token_windows(model_id, items)
    per_text = []
    for text, ws in zip(items, windows, strict=True):
        found = aggregate(text, ws, info.labels, strategy)
        per_text.append([e for e in found if wanted is None or e.label.upper() in wanted])
    return EntitiesResult(model=model_id, method="token-classification", aggregation=strategy, entities=per_text,
                          truncated=[False] * len(items))
