"""Tag aggregation on hand-made logits: B-/I- grouping, word pieces, and BIOES tags (beyond the pipeline)."""

from __future__ import annotations

import torch

from engine.engine import TokenWindow
from engine.tokenization import Encoded
from tools.entities import aggregate

LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "S-ORG", 6: "E-PER"}


def _case(text: str, pieces: list[tuple[int, int, int]], strategy: str = "first"):
    """pieces: (start, end, label id) per token, wrapped in [CLS]/[SEP]; a piece glued to the previous one
    continues its word."""
    offsets = [(0, 0)] + [(s, e) for s, e, _ in pieces] + [(0, 0)]
    logits = torch.full((len(offsets), len(LABELS)), -5.0)
    for t, (_, _, label) in enumerate(pieces, start=1):
        logits[t, label] = 5.0
    logits[0, 0] = logits[-1, 0] = 5.0
    continues = [False] + [i > 0 and pieces[i - 1][1] == s for i, (s, _, _) in enumerate(pieces)] + [False]
    enc = Encoded(ids=[0] * len(offsets), type_ids=[0] * len(offsets), offsets=offsets,
                  special=[1] + [0] * len(pieces) + [1], truncated=False)
    return aggregate(text, [TokenWindow(logits, enc, continues)], LABELS, strategy)


def test_word_pieces_follow_their_first_piece_with_first_but_not_with_simple():
    text = "Angela Merkel visited Paris"
    # "Merkel" is split into "Mer" + "kel" (glued); the continuation is tagged B-PER by mistake
    pieces = [(0, 6, 1), (7, 10, 2), (10, 13, 1), (14, 21, 0), (22, 27, 3)]
    ents = _case(text, pieces)
    assert [(e.text, e.label) for e in ents] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert all(0.99 < e.score <= 1 for e in ents)
    assert [e.text for e in _case(text, pieces, "simple")] == ["Angela Mer", "kel", "Paris"]


def test_adjacent_entities_of_the_same_type_are_split_on_B():
    assert [e.text for e in _case("Anna Bob", [(0, 4, 1), (5, 8, 1)])] == ["Anna", "Bob"]


def test_I_without_B_starts_an_entity_and_type_change_splits():
    ents = _case("Berlin Anna", [(0, 6, 4), (7, 11, 2)])
    assert [(e.text, e.label, e.start, e.end) for e in ents] == [("Berlin", "LOC", 0, 6), ("Anna", "PER", 7, 11)]


def test_bioes_single_and_end_tags():
    ents = _case("Acme hired Ada Lovelace", [(0, 4, 5), (5, 10, 0), (11, 14, 1), (15, 23, 6)])
    assert [(e.text, e.label) for e in ents] == [("Acme", "ORG"), ("Ada Lovelace", "PER")]
