"""extract_entities: texts -> entity spans (token-classification models, BIO/IOB/BIOES tags)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.errors import InvalidInput
from engine.tokenization import Encoded
from tools.context import ToolContext, as_texts, tool_model
from tools.schemas import EntitiesResult, Entity

# Common spellings agents use for the usual CoNLL types.
LABEL_ALIASES = {"person": "PER", "people": "PER", "organization": "ORG", "organisation": "ORG",
                 "company": "ORG", "location": "LOC", "place": "LOC", "miscellaneous": "MISC"}


@dataclass
class _Word:
    start: int
    end: int
    tag: str  # the tag of the word's first token (subword pieces follow their word)
    probs: list[float]


def _split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'PER' (IO scheme) -> ('I', 'PER'); 'O' -> ('O', '')."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESL":
        return tag[0], tag[2:]
    return "I", tag


def _words(logits: torch.Tensor, enc: Encoded, labels: dict[int, str]) -> list[_Word]:
    probs = torch.softmax(logits.float(), dim=-1)  # [n, L]
    best = probs.argmax(-1).tolist()
    words: list[_Word] = []
    for t, ((start, end), special) in enumerate(zip(enc.offsets, enc.special, strict=True)):
        if special or end <= start:
            continue
        p = float(probs[t, best[t]])
        if words and start == words[-1].end:  # no gap: a continuation piece of the same word
            words[-1].end = end
            words[-1].probs.append(p)
        else:
            words.append(_Word(start, end, labels.get(best[t], f"LABEL_{best[t]}"), [p]))
    return words


def aggregate(text: str, logits: torch.Tensor, enc: Encoded, labels: dict[int, str]) -> list[Entity]:
    """Token logits [n, L] -> entity spans with character offsets into `text`."""
    spans: list[tuple[str, int, int, list[float]]] = []
    open_span = False
    for w in _words(logits, enc, labels):
        prefix, kind = _split_tag(w.tag)
        if prefix == "O":
            open_span = False
            continue
        continues = open_span and spans[-1][0] == kind and prefix in ("I", "E", "L")
        if continues:
            label, start, _, probs = spans[-1]
            spans[-1] = (label, start, w.end, probs + w.probs)
        else:
            spans.append((kind, w.start, w.end, list(w.probs)))
        open_span = prefix not in ("E", "L", "S")
    return [Entity(text=text[s:e], label=label, score=sum(p) / len(p), start=s, end=e)
            for label, s, e, p in spans]


def _wanted(labels: list[str] | None) -> set[str] | None:
    if not labels:
        return None
    return {LABEL_ALIASES.get(x.lower(), x).upper() for x in labels}


async def extract_entities(ctx: ToolContext, texts: str | list[str], model: str | None = None,
                           labels: list[str] | None = None) -> EntitiesResult:
    items = as_texts(texts, ctx.limits)
    if labels is not None and not all(isinstance(x, str) and x for x in labels):
        raise InvalidInput("labels must be a list of non-empty strings")
    model_id = tool_model(ctx, "extract_entities", model, ctx.defaults.ner_model)
    results = await ctx.engine.token_logits(model_id, items)
    info = await ctx.engine.info(model_id)
    wanted = _wanted(labels)
    per_text = []
    for text, r in zip(items, results, strict=True):
        found = aggregate(text, r.logits, r.encoded, info.labels)
        per_text.append([e for e in found if wanted is None or e.label.upper() in wanted])
    return EntitiesResult(model=model_id, entities=per_text, truncated=[r.encoded.truncated for r in results])
