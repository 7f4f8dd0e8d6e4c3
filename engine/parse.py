"""A document's linguistic parse as plain data (what a spaCy pipeline computes), for NER and graph building.

Offsets are character offsets into the input text; token `head` is the index of the syntactic head within
`tokens` (a root points at itself). Nothing here depends on spaCy: consumers (tools/, ontology/) read these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParsedToken:
    start: int
    end: int
    text: str
    lemma: str
    pos: str  # universal POS tag (NOUN, VERB, PROPN …)
    dep: str  # dependency label (nsubj, dobj, ROOT …)
    head: int  # index into DocParse.tokens


@dataclass(frozen=True)
class ParsedEntity:
    start: int
    end: int
    text: str
    label: str
    score: float


@dataclass(frozen=True)
class DocParse:
    tokens: tuple[ParsedToken, ...]
    sentences: tuple[tuple[int, int], ...]  # character spans
    entities: tuple[ParsedEntity, ...]
    noun_chunks: tuple[tuple[int, int], ...]  # character spans
