"""What the pipeline reads: a document's parse as plain data, produced by whatever ran the models.

These mirror the engine's `DocParse` on purpose but are ontology's own (ontology never imports the engine);
the tools layer converts. Offsets are character offsets into `ParsedDoc.text`; a token's `head` indexes
`ParsedDoc.tokens` (a root points at itself).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    text: str
    lemma: str
    pos: str  # universal POS (VERB, PROPN, …)
    dep: str  # dependency label (nsubj, dobj, prep, pobj, agent, conj, …)
    head: int


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    text: str
    label: str  # entity type as the model names it (PERSON, ORG, GPE … or a caller's label)
    score: float = 1.0


@dataclass(frozen=True)
class ParsedDoc:
    doc_id: str
    text: str
    sentences: tuple[tuple[int, int], ...]
    mentions: tuple[Mention, ...]
    tokens: tuple[Token, ...] = ()  # empty when the model gives no dependency parse (no typed relations)
