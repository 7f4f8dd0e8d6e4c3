"""GLiNER2 outputs -> results: gliner2 2.1.0's span-architecture decoding, window merging, character offsets.

Per span field, candidates are the (start word, width) spans whose sigmoid probability is at or above the
threshold (`>=`, gliner2's), in row-major order; gliner2's greedy decoder sorts them by probability (stable)
and keeps each whose characters do not overlap one kept before. Per task kind:

- entities: every kept span of each entity type (types decode independently, so they may overlap);
- relations: per predicted instance, the best head span and the best tail span; kept when both exist;
- structures: per predicted instance, each field's kept spans (`str` fields: the best one); a choice field
  scores its choices at their words in the classification prefix and keeps those at or above the threshold
  (`str`: the best, if it is); an instance with no value is dropped;
- classification: softmax over the labels (multi-label: sigmoid); single-label picks the best, multi-label
  every label at or above `cls_threshold`, else the best.

A span task predicts no instance when its count is 0 (entities too). A text cut into windows decodes
entities once over the union of its windows' candidates (a span found twice keeps its best score), joins the
windows' relation and structure instances (dropping those another window found already), and classifies on the per-label maximum of the
windows' logits. Offsets are gliner2's (its normalised text) clipped to the caller's text: a span that was only
the "." gliner2 appends is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from engine.models.gliner2 import Gliner2Output
from engine.models.gliner2_prompt import Prepared, SchemaTask, TaskKind

# (score, char start, char end) in the normalised text
_Span = tuple[float, int, int]


@dataclass(frozen=True)
class SpanValue:
    text: str
    score: float
    start: int | None  # character offsets into the caller's text; None for a choice field's value
    end: int | None


@dataclass(frozen=True)
class EntityValue:
    label: str
    text: str
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class RelationValue:
    relation: str
    head: SpanValue
    tail: SpanValue


@dataclass
class TextResult:
    """One text's results, per task kind."""

    entities: list[EntityValue] = field(default_factory=list)
    relations: list[RelationValue] = field(default_factory=list)
    structures: dict[str, list[dict[str, list[SpanValue]]]] = field(default_factory=dict)
    classifications: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # chosen, best first


def _candidates(probs: torch.Tensor, threshold: float, words: Sequence[tuple[int, int]], first: int
                ) -> list[_Span]:
    """probs [W, K] over one window's text words -> candidates (gliner2's `_find_spans`)."""
    n = probs.shape[0]
    starts, widths = torch.where(probs >= threshold)
    scores = probs[starts, widths].tolist()
    out = []
    for s, k, p in zip(starts.tolist(), widths.tolist(), scores, strict=True):
        if s + k < n:
            out.append((p, words[first + s][0], words[first + s + k][1]))
    return out


def greedy(spans: Sequence[_Span]) -> list[_Span]:
    """gliner2's `finalize_spans` (no overlap policy): best first, no two kept spans share a character."""
    kept: list[_Span] = []
    for cand in sorted(spans, key=lambda x: x[0], reverse=True):
        if not any(cand[1] < k[2] and k[1] < cand[2] for k in kept):
            kept.append(cand)
    return kept


def _value(text: str, span: _Span) -> SpanValue | None:
    start, end = span[1], min(span[2], len(text))
    surface = text[start:end].strip()
    return SpanValue(surface, span[0], start, end) if surface else None


def _where(v: SpanValue | None) -> tuple[str, int | None, int | None] | None:
    """What identifies a value across windows: its text and offsets, not its score."""
    return None if v is None else (v.text, v.start, v.end)


def _values(text: str, spans: Sequence[_Span]) -> list[SpanValue]:
    return [v for v in (_value(text, s) for s in spans) if v is not None]


def _instances(task: SchemaTask, logits: torch.Tensor, n_prefix: int, prefix: list[str], text: str,
               words: Sequence[tuple[int, int]], first: int, threshold: float) -> list[dict[str, list[SpanValue]]]:
    """A structure's instances in one window: logits [count, F, W, K]."""
    probs = torch.sigmoid(logits)
    out = []
    for inst in range(probs.shape[0]):
        instance: dict[str, list[SpanValue]] = {}
        for f_idx, f in enumerate(task.fields):
            if f.choices:
                lowered = [w.lower() for w in prefix]
                scored = [(c, probs[inst, f_idx, lowered.index(c.lower()), 0].item()) for c in dict.fromkeys(f.choices)
                          if c.lower() in lowered]
                if f.dtype == "list":
                    chosen = [(c, p) for c, p in scored if p >= threshold]
                else:
                    best = max(scored, key=lambda x: x[1], default=None)  # max keeps the first of equals
                    chosen = [best] if best is not None and best[1] >= threshold else []
                instance[f.name] = [SpanValue(c, p, None, None) for c, p in chosen]
                continue
            spans = greedy(_candidates(probs[inst, f_idx, n_prefix:], threshold, words, first))
            instance[f.name] = _values(text, spans if f.dtype == "list" else spans[:1])
        if any(instance.values()):
            out.append(instance)
    return out


def decode(prepared: Prepared, outputs: Sequence[Gliner2Output], texts: Sequence[str], threshold: float
           ) -> list[TextResult]:
    """Every text's results from its windows' outputs (`outputs[i]` for `prepared.windows[i]`)."""
    tasks = prepared.schema.tasks
    results = [TextResult() for _ in texts]
    entity_spans: list[dict[tuple[str, int, int], float]] = [{} for _ in texts]  # best score per span
    cls_logits: list[dict[str, torch.Tensor]] = [{} for _ in texts]
    seen: list[dict[tuple, int]] = [{} for _ in texts]  # relation / structure instance -> the window it came from
    for w, (window, item, out) in enumerate(zip(prepared.windows, prepared.items, outputs, strict=True)):
        t, first, text, words = window.text, window.first_word, texts[window.text], prepared.words[window.text]
        res = results[t]
        for task, logits in zip(tasks, out.logits, strict=True):
            if logits is None:
                continue
            if task.kind is TaskKind.CLASSIFICATION:
                prev = cls_logits[t].get(task.name)
                cls_logits[t][task.name] = logits if prev is None else torch.maximum(prev, logits)
            elif task.kind is TaskKind.ENTITIES:
                probs = torch.sigmoid(logits[0, :, item.n_prefix:])  # [F, W, K]
                for f_idx, f in enumerate(task.fields):
                    for p, s, e in _candidates(probs[f_idx], threshold, words, first):
                        key = (f.name, s, e)
                        if key not in entity_spans[t] or entity_spans[t][key] < p:
                            entity_spans[t][key] = p  # an existing key keeps its place
            elif task.kind is TaskKind.RELATIONS:
                probs = torch.sigmoid(logits[:, :, item.n_prefix:])  # [count, 2, W, K]
                for inst in range(probs.shape[0]):
                    best = [greedy(_candidates(probs[inst, f], threshold, words, first))[:1] for f in range(2)]
                    head, tail = (_value(text, b[0]) if b else None for b in best)
                    key = (task.name, _where(head), _where(tail))
                    if head is not None and tail is not None and seen[t].setdefault(key, w) == w:
                        # as gliner2, every instance (two may agree); a repeat from another (overlapping)
                        # window is dropped
                        res.relations.append(RelationValue(task.name, head, tail))
            else:
                found = res.structures.setdefault(task.name, [])
                for instance in _instances(task, logits, item.n_prefix, prepared.prefix, text, words, first,
                                           threshold):
                    key = (task.name, *((name, *map(_where, vals)) for name, vals in instance.items()))
                    if seen[t].setdefault(key, w) == w:
                        found.append(instance)
    for t, res in enumerate(results):
        by_label: dict[str, list[_Span]] = {}
        for (label, s, e), p in entity_spans[t].items():
            by_label.setdefault(label, []).append((p, s, e))
        for label, spans in by_label.items():
            res.entities += [EntityValue(label, v.text, v.score, v.start or 0, v.end or 0)
                             for v in _values(texts[t], greedy(spans))]
        res.entities.sort(key=lambda x: (x.start, x.end))
        for task in tasks:
            if task.kind is TaskKind.CLASSIFICATION and task.name in cls_logits[t]:
                res.classifications[task.name] = classify(task, cls_logits[t][task.name])
    return results


def classify(task: SchemaTask, logits: torch.Tensor) -> list[tuple[str, float]]:
    """The chosen labels, best first: single-label every label ranked by softmax probability (the first is
    gliner2's choice); multi-label those at or above `cls_threshold` by sigmoid, else the best."""
    labels = [f.name for f in task.fields]
    probs = (torch.sigmoid(logits) if task.multi_label else torch.softmax(logits, dim=-1)).tolist()
    ranked = sorted(zip(labels, probs, strict=True), key=lambda x: x[1], reverse=True)
    if not task.multi_label:
        return ranked
    chosen = [x for x in ranked if x[1] >= task.cls_threshold]
    return chosen or ranked[:1]
