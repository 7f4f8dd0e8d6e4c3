"""GLiNER outputs -> entity spans: gliner 0.2.x's decoding, window merging, character offsets.

Span models give logits [W, K, C] (start word, width, label), token-level models [W, C, 3] (start, end,
inside). Candidates are the sigmoid probabilities strictly above the threshold, in gliner's order (row-major
over the logits); greedy decoding sorts them by score (stable), keeps each that does not clash with one kept
before it, and returns them by start word. Clash: `flat` — any overlap; nested — a partial overlap (one span
inside another is allowed); the same span twice clashes unless `multi_label`.

A text cut into windows is decoded once over the union of its windows' candidates (word indices made global;
a span seen by two windows keeps its best score), so a text that fits one window decodes exactly as gliner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpanCandidate:
    start: int  # first word, inclusive
    end: int  # last word, inclusive
    label: int  # index into the request's labels
    score: float


@dataclass(frozen=True)
class ZeroShotEntity:
    text: str
    label: str
    score: float  # the span's sigmoid probability (token-level: the least of its start, end and inside ones)
    start: int  # character offsets into the text
    end: int


def span_candidates(logits: torch.Tensor, threshold: float) -> list[SpanCandidate]:
    """[W, K, C] span logits (-inf past the text) -> candidates above `threshold`."""
    probs = torch.sigmoid(logits.float())
    s, k, c = torch.where(probs > threshold)
    scores = probs[s, k, c].tolist()
    return [SpanCandidate(a, a + b, lab, p) for a, b, lab, p in zip(s.tolist(), k.tolist(), c.tolist(), scores,
                                                                     strict=True)]


def token_candidates(logits: torch.Tensor, threshold: float) -> list[SpanCandidate]:
    """[W, C, 3] start/end/inside logits -> spans from a start to an end of the same label whose every word is
    inside (>= threshold); the score is the least of the three kinds along it (gliner's TokenDecoder)."""
    probs = torch.sigmoid(logits.float())
    start, end, inside = probs.unbind(-1)  # [W, C] each
    starts = [tuple(x) for x in torch.stack(torch.where(start > threshold), 1).tolist()]
    ends = [tuple(x) for x in torch.stack(torch.where(end > threshold), 1).tolist()]
    inside_l, start_l, end_l = inside.tolist(), start.tolist(), end.tolist()
    out = []
    for st, c in starts:
        for ed, c_end in ends:
            if ed < st or c != c_end:
                continue
            ins = [inside_l[w][c] for w in range(st, ed + 1)]
            if any(p < threshold for p in ins):
                continue
            out.append(SpanCandidate(st, ed, c, min(*ins, start_l[st][c], end_l[ed][c])))
    return out


def _clash(a: SpanCandidate, b: SpanCandidate, flat: bool, multi_label: bool) -> bool:
    if (a.start, a.end) == (b.start, b.end):
        return not multi_label
    disjoint = a.start > b.end or b.start > a.end
    if flat:
        return not disjoint
    nested = (a.start <= b.start and a.end >= b.end) or (b.start <= a.start and b.end >= a.end)
    return not (disjoint or nested)


def greedy(candidates: Sequence[SpanCandidate], flat: bool = True, multi_label: bool = False
           ) -> list[SpanCandidate]:
    kept: list[SpanCandidate] = []
    for cand in sorted(candidates, key=lambda x: -x.score):
        if not any(_clash(cand, k, flat, multi_label) for k in kept):
            kept.append(cand)
    kept.sort(key=lambda x: x.start)
    return kept


def merge_windows(per_window: Sequence[tuple[int, list[SpanCandidate]]]) -> list[SpanCandidate]:
    """(first word of the window, its candidates) -> one text's candidates in global word indices; a span
    found in two windows keeps its best score, at its first position."""
    best: dict[tuple[int, int, int], SpanCandidate] = {}
    for first, cands in per_window:
        for c in cands:
            g = SpanCandidate(c.start + first, c.end + first, c.label, c.score)
            key = (g.start, g.end, g.label)
            if key not in best or best[key].score < g.score:
                best[key] = g  # an existing key keeps its place
    return list(best.values())


def to_entities(text: str, words: Sequence[tuple[int, int]], spans: Sequence[SpanCandidate],
                labels: Sequence[str]) -> list[ZeroShotEntity]:
    out = []
    for s in spans:
        start, end = words[s.start][0], words[s.end][1]
        out.append(ZeroShotEntity(text[start:end], labels[s.label], s.score, start, end))
    return out
