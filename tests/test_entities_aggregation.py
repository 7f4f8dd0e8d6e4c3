"""BIO/BIOES tag aggregation into character spans, on hand-made logits."""

from __future__ import annotations

import torch

from engine.tokenization import Encoded
from tools.entities import aggregate

LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def _case(text: str, pieces: list[tuple[int, int, int]]):
    """pieces: (start, end, label id) per token, wrapped in [CLS]/[SEP]."""
    offsets = [(0, 0)] + [(s, e) for s, e, _ in pieces] + [(0, 0)]
    logits = torch.full((len(offsets), len(LABELS)), -5.0)
    for t, (_, _, label) in enumerate(pieces, start=1):
        logits[t, label] = 5.0
    logits[0, 0] = logits[-1, 0] = 5.0
    enc = Encoded(ids=[0] * len(offsets), type_ids=[0] * len(offsets), offsets=offsets,
                  special=[1] + [0] * len(pieces) + [1], truncated=False)
    return aggregate(text, logits, enc, LABELS)


def test_multi_token_entities_and_subwords():
    text = "Angela Merkel visited Paris"
    # "Merkel" is split into "Mer" + "##kel" (adjacent offsets); the continuation is tagged B-PER by mistake
    ents = _case(text, [(0, 6, 1), (7, 10, 2), (10, 13, 1), (14, 21, 0), (22, 27, 3)])
    assert [(e.text, e.label) for e in ents] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert all(0.99 < e.score <= 1 for e in ents)


def test_adjacent_entities_of_the_same_type_are_split_on_B():
    text = "Anna Bob"
    ents = _case(text, [(0, 4, 1), (5, 8, 1)])
    assert [e.text for e in ents] == ["Anna", "Bob"]


def test_I_without_B_starts_an_entity_and_type_change_splits():
    text = "Berlin Anna"
    ents = _case(text, [(0, 6, 4), (7, 11, 2)])
    assert [(e.text, e.label, e.start, e.end) for e in ents] == [("Berlin", "LOC", 0, 6), ("Anna", "PER", 7, 11)]
