"""Typed relations, one construction per case, on the real spaCy parse: the normalised relation, its direction,
the pattern that found it, and evidence offsets that point at the two names and the sentence in the document."""

from __future__ import annotations

import asyncio

import pytest

from engine.catalog import Catalog
from engine.engine import Engine
from ontology.graph import extract
from tools.ontology import to_parsed
from tools.parse import DEFAULT_PARSE_MODEL, parse

# text, (subject, relation, object, pattern) expected among its typed relations
CASES = {
    "copula": ("Shares rose. Daniel Okafor is the chief executive of Helix Energy.",
               [("Daniel Okafor", "role:ceo", "Helix Energy", "copula")]),
    "apposition": ("Maria Lopez, the mayor of Springfield, opened the bridge.",
                   [("Maria Lopez", "role:mayor", "Springfield", "apposition")]),
    "apposition_first": ("The mayor of Lyon, Claire Dubois, met reporters.",
                         [("Claire Dubois", "role:mayor", "Lyon", "apposition")]),
    "verb_prep": ("Sam Patel works for Orion Bank and teaches at Leeds University.",
                  [("Sam Patel", "works_for", "Orion Bank", "verb_prep"),
                   ("Sam Patel", "works_for", "Leeds University", "verb_prep")]),
    "prep_passive": ("Tesla is headquartered in Austin.", [("Tesla", "based_in", "Austin", "verb_prep")]),
    "born_in": ("Elena Petrova was born in Kazan.", [("Elena Petrova", "born_in", "Kazan", "verb_prep")]),
    "join_as": ("Priya Raman joined Vantage Capital as chief economist in 2019.",
                [("Priya Raman", "works_for", "Vantage Capital", "verb_object"),
                 ("Priya Raman", "role:chief_economist", "Vantage Capital", "join_as")]),
    "relative_clause": ("Nordwind Logistics, which is headquartered in Rotterdam, bought Cargo Lane.",
                        [("Nordwind Logistics", "based_in", "Rotterdam", "relative_clause"),
                         ("Nordwind Logistics", "acquired", "Cargo Lane", "verb_object")]),
    "whose": ("Siemens, whose headquarters are in Munich, builds trains.",
              [("Siemens", "based_in", "Munich", "relative_clause")]),
    "participle": ("Kestrel Labs, based in Bergen, makes drones.",
                   [("Kestrel Labs", "based_in", "Bergen", "participle")]),
    "possessive": ("Google's chief executive Sundar Pichai visited Paris.",
                   [("Sundar Pichai", "role:ceo", "Google", "possessive"),
                    ("Sundar Pichai", "visited", "Paris", "verb_object")]),
    "possessive_founder": ("Apex Foods' founder, Liam Grant, was born in Cork.",
                           [("Liam Grant", "founded", "Apex Foods'", "possessive"),
                            ("Liam Grant", "born_in", "Cork", "verb_prep")]),
    "title": ("Israeli Prime Minister Ariel Sharon met reporters.",
              [("Ariel Sharon", "role:prime_minister", "Israeli", "title")]),
    "affiliation": ("Kerry Nettle from the Greens took the final position.",
                    [("Kerry Nettle", "affiliated_with", "Greens", "affiliation")]),
    "apposition_title": ("Mr Downer met Mr Zinni, a retired Marine Corps general.",
                         [("Zinni", "role:general", "Marine Corps", "title"),
                          ("Downer", "met", "Zinni", "verb_object")]),
    "married_to": ("Hannah Berg is married to Jonas Lind.", [("Hannah Berg", "married", "Jonas Lind", "copula")]),
    "head_of": ("Tessa Moor is the head of Brightleaf.", [("Tessa Moor", "heads", "Brightleaf", "copula")]),
    "owned_participle": ("Cargo Lane, owned by Nordwind Logistics, hired staff.",
                         [("Nordwind Logistics", "owns", "Cargo Lane", "participle")]),
    "has_headquarters": ("Helix Energy has its headquarters in Oslo.",
                         [("Helix Energy", "based_in", "Oslo", "verb_prep")]),
    "became": ("Daniel Okafor became chief executive of Helix Energy in 2020.",
               [("Daniel Okafor", "role:ceo", "Helix Energy", "copula")]),
    "coordination": ("Amazon acquired Whole Foods and Zoox.",
                     [("Amazon", "acquired", "Whole Foods", "verb_object"),
                      ("Amazon", "acquired", "Zoox", "verb_object")]),
    "passive_agent": ("Brightleaf was founded by Tessa Moor and Omar Haddad.",
                      [("Tessa Moor", "founded", "Brightleaf", "passive_agent"),
                       ("Omar Haddad", "founded", "Brightleaf", "passive_agent")]),
    "owned_by": ("Cargo Lane is owned by Nordwind Logistics.",
                 [("Nordwind Logistics", "owns", "Cargo Lane", "passive_agent")]),
    "weak": ("Judge Amy Dein refused to grant bail for Peter Reid after the hearing.", []),
    "bought_by": ("YouTube was bought by Google in 2006.", [("Google", "acquired", "YouTube", "passive_agent")]),
}


@pytest.fixture(scope="module")
def records():
    async def run():
        engine = Engine(Catalog.default())
        await engine.start()
        try:
            return await parse(engine, DEFAULT_PARSE_MODEL, [t for t, _ in CASES.values()])
        finally:
            await engine.shutdown()

    parses = asyncio.run(run())
    return {name: extract(to_parsed(name, text, [(0, p)]))
            for (name, (text, _)), p in zip(CASES.items(), parses, strict=True)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_construction(records, name):
    text, expected = CASES[name]
    typed = {(st, rel, tt): ev for _, st, _, tt, rel, kind, ev in records[name].relations if kind == "typed"}
    for subject, relation, obj, pattern in expected:
        assert (subject, relation, obj) in typed, f"{name}: {subject} -[{relation}]-> {obj} not in {sorted(typed)}"
        ev = typed[(subject, relation, obj)]
        assert ev["pattern"] == pattern and 0 < ev["confidence"] <= 1
        assert text[slice(*ev["source_span"])] == subject and text[slice(*ev["target_span"])] == obj
        assert text[ev["sentence_start"]:ev["sentence_end"]].strip() == ev["sentence"]
        assert ev["sentence_start"] <= ev["source_span"][0] < ev["sentence_end"]


def test_weak_prepositions_state_no_fact(records):
    """A verb outside the relation table with "for", "after" …: no typed edge ("granted bail for Reid")."""
    assert not [r for r in records["weak"].relations if r[5] == "typed"]


def test_co_occurrence_is_never_typed(records):
    """Two names in one sentence with no construction between them: context only."""
    rels = records["copula"].relations
    assert all(r[5] in ("typed", "co-occurrence") for r in rels)
    assert {r[4] for r in rels if r[5] == "co-occurrence"} == {"co_occurs_with"}
