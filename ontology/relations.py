"""Relations from one parsed document: sentence co-occurrence, and subject-verb-object triples read off the
dependency parse (the verb's lemma is the relation, a preposition joins it: "work_for", "move_to").

Every relation carries its evidence: the document id, the sentence's text and character span, and the spans
of the two mentions, all offsets into the document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ontology.inputs import Mention, ParsedDoc, Token

CO_OCCURS = "co_occurs_with"
SUBJECTS = {"nsubj", "nsubjpass", "csubj"}
OBJECTS = {"dobj", "obj", "attr", "dative", "oprd"}
# a verb whose subject is a form of "be" + an attribute ("X is the CEO of Y") is handled as the attribute noun
PREP_OBJECTS = {"pobj"}


@dataclass(frozen=True)
class Evidence:
    doc: str
    sentence: str
    sentence_start: int
    sentence_end: int
    source_span: tuple[int, int]
    target_span: tuple[int, int]

    def as_dict(self) -> dict:
        return {"doc": self.doc, "sentence": self.sentence, "sentence_start": self.sentence_start,
                "sentence_end": self.sentence_end, "source_span": list(self.source_span),
                "target_span": list(self.target_span)}


@dataclass(frozen=True)
class Relation:
    source: str  # entity id
    target: str
    relation: str
    kind: str  # "co-occurrence" or "svo"
    evidence: Evidence


def sentence_of(doc: ParsedDoc, start: int) -> int:
    """Index of the sentence containing character `start` (the last one starting at or before it)."""
    lo, hi = 0, len(doc.sentences) - 1
    best = 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if doc.sentences[mid][0] <= start:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def _evidence(doc: ParsedDoc, sent: int, a: Mention, b: Mention) -> Evidence:
    s, e = doc.sentences[sent] if doc.sentences else (0, len(doc.text))
    return Evidence(doc.doc_id, doc.text[s:e].strip(), s, e, (a.start, a.end), (b.start, b.end))


def co_occurrences(doc: ParsedDoc, entity_of: Mapping[Mention, str]) -> list[Relation]:
    """One relation per pair of distinct entities mentioned in the same sentence (their first mentions
    there), directed from the smaller id to the larger so the pair has one edge."""
    by_sentence: dict[int, dict[str, Mention]] = {}
    for m in doc.mentions:
        eid = entity_of.get(m)
        if eid is None:
            continue
        by_sentence.setdefault(sentence_of(doc, m.start), {}).setdefault(eid, m)
    out: list[Relation] = []
    for sent, found in sorted(by_sentence.items()):
        ids = sorted(found)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                out.append(Relation(a, b, CO_OCCURS, "co-occurrence", _evidence(doc, sent, found[a], found[b])))
    return out


def _children(tokens: Sequence[Token]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in tokens]
    for i, t in enumerate(tokens):
        if t.head != i:
            kids[t.head].append(i)
    return kids


def _with_conjuncts(i: int, tokens: Sequence[Token], kids: list[list[int]]) -> list[int]:
    """A token and the tokens coordinated with it ("Alice and Bob founded …" -> both subjects)."""
    out, todo = [], [i]
    while todo:
        j = todo.pop()
        out.append(j)
        todo.extend(k for k in kids[j] if tokens[k].dep == "conj")
    return out


def svo_triples(doc: ParsedDoc, entity_of: Mapping[Mention, str]) -> list[Relation]:
    """Subject-verb-object relations where both ends fall inside an entity mention.

    Active: nsubj + dobj -> lemma ("acquire"); nsubj + prep + pobj -> lemma_prep ("work_for").
    Passive with an agent ("Y was founded by X") reads as active: X found Y. Passive without one
    ("X was born in Y") keeps the participle: born_in."""
    tokens = doc.tokens
    if not tokens:
        return []
    kids = _children(tokens)
    spans = sorted((m for m in doc.mentions if m in entity_of), key=lambda m: m.start)

    def mention_at(i: int) -> Mention | None:
        t = tokens[i]
        for m in spans:
            if m.start <= t.start < m.end:
                return m
        # a head noun just outside a mention ("the company Acme") counts through its compounds
        for k in kids[i]:
            if tokens[k].dep in ("compound", "appos", "flat"):
                found = mention_at(k)
                if found is not None:
                    return found
        return None

    out: list[Relation] = []
    for v, verb in enumerate(tokens):
        if verb.pos not in ("VERB", "AUX"):
            continue
        subjects = [k for c in kids[v] if tokens[c].dep in SUBJECTS for k in _with_conjuncts(c, tokens, kids)]
        if not subjects:
            continue
        passive = any(tokens[c].dep in ("nsubjpass", "auxpass") for c in kids[v])
        pairs: list[tuple[int, int, str, bool]] = []  # (subject tok, object tok, relation, swap)
        for c in kids[v]:
            dep = tokens[c].dep
            if dep in OBJECTS:
                pairs += [(s, o, verb.lemma.lower(), False) for s in subjects
                          for o in _with_conjuncts(c, tokens, kids)]
            elif dep == "agent" and passive:
                for o in (k for k in kids[c] if tokens[k].dep in PREP_OBJECTS):
                    pairs += [(s, oo, verb.lemma.lower(), True) for s in subjects
                              for oo in _with_conjuncts(o, tokens, kids)]
            elif dep == "prep":
                word = verb.text.lower() if passive else verb.lemma.lower()
                rel = f"{word}_{tokens[c].text.lower()}"
                for o in (k for k in kids[c] if tokens[k].dep in PREP_OBJECTS):
                    pairs += [(s, oo, rel, False) for s in subjects for oo in _with_conjuncts(o, tokens, kids)]
        for s, o, rel, swap in pairs:
            ms, mo = mention_at(s), mention_at(o)
            if ms is None or mo is None:
                continue
            a, b = entity_of[ms], entity_of[mo]
            if a == b:
                continue
            if swap:
                a, b, ms, mo = b, a, mo, ms
            sent = sentence_of(doc, verb.start)
            out.append(Relation(a, b, rel, "svo", _evidence(doc, sent, ms, mo)))
    return out
