"""Typed relations, one construction per case, on the real spaCy parse: the normalised relation, its direction,
the pattern that found it, and evidence offsets that point at the two names and the sentence in the document."""

from __future__ import annotations

import asyncio

import pytest

from engine.catalog import Catalog
from engine.engine import Engine
from ontology.graph import extract
from ontology.inputs import Mention, ParsedDoc
from ontology.relations import CoOccurrence, FoundRelation
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
    "title_hyphenated_modifier": ("Israeli right-wing Prime Minister Ariel Sharon met reporters.",
                                  [("Ariel Sharon", "role:prime_minister", "Israeli", "title")]),
    "title_after_a_name": ("Pentagon spokesman Navy Captain Timothy Taylor said all four were aboard.",
                           [("Timothy Taylor", "role:captain", "Navy", "title")]),
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
    "possessive_place": ("Pakistan's Foreign Ministry has announced sanctions.",
                         [("Foreign Ministry", "based_in", "Pakistan", "possessive")]),
    "possessive_group": ("Apaches blasted a building of Mr Arafat's Fatah movement.",
                         [("Arafat", "affiliated_with", "Fatah", "possessive")]),
    "place_in": ("The Woomera Detention Centre in South Australia was quiet overnight.",
                 [("The Woomera Detention Centre", "based_in", "South Australia", "place_in")]),
    "place_in_compass": ("Smoke is billowing from the Woomera Detention Centre in South Australia's far north.",
                         [("the Woomera Detention Centre", "based_in", "South Australia's", "place_in")]),
    "not_place_in": ("Australia escaped with a draw in the Test against New Zealand in Perth.", []),
    "place_apposition": ("The accord was signed on December 5 in Bonn, Germany, by the groups.",
                         [("Bonn", "located_in", "Germany", "place_apposition")]),
    "place_noun": ("A Palestinian was killed in the West Bank town of Ramallah.",
                   [("Ramallah", "located_in", "West Bank", "place_noun")]),
    "shared_title": ("The shuttle, carrying Russian cosmonauts Vladimir Dezhurov and Mikhail Tyurin, landed at noon.",
                     [("Vladimir Dezhurov", "role:cosmonaut", "Russian", "title"),
                      ("Mikhail Tyurin", "role:cosmonaut", "Russian", "title")]),
    "nationality": ("Hewitt teamed with fellow Australian Alicia Molik to beat Switzerland.",
                    [("Alicia Molik", "affiliated_with", "Australian", "title")]),
    "group_apposition": ("Mr Giuliani, a Republican, has served two terms as mayor.",
                         [("Giuliani", "affiliated_with", "Republican", "apposition")]),
    "appositive_title": ("In Brussels, the US Defence Secretary, Donald Rumsfeld, has told NATO allies to prepare.",
                         [("Donald Rumsfeld", "role:defence_secretary", "US", "title")]),
    "told": ("Mr Downer has told Channel Seven it should not be dismissed.",
             [("Downer", "told", "Channel Seven", "verb_object")]),
    "based": ("India has accused Pakistan-based Lashkar-e-Taiba of carrying out the attack.",
              [("Lashkar-e-Taiba", "based_in", "Pakistan", "participle")]),
    "compass": ("Shane Bradford of Ballidu, just west of Burakin, says the quake shook his house.", []),
    "list": ("Rain has fallen in Sydney, Brisbane, Melbourne and Perth.", []),
}
NO_TYPED = ("weak", "not_place_in", "list")


@pytest.fixture(scope="module")
def parsed():
    async def run():
        engine = Engine(Catalog.default())
        await engine.start()
        try:
            return await parse(engine, DEFAULT_PARSE_MODEL, [t for t, _ in CASES.values()])
        finally:
            await engine.shutdown()

    parses = asyncio.run(run())
    return {name: to_parsed(name, text, [(0, p)]) for (name, (text, _)), p in zip(CASES.items(), parses, strict=True)}


@pytest.fixture(scope="module")
def records(parsed):
    return {name: extract(doc) for name, doc in parsed.items()}


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


@pytest.mark.parametrize("name", NO_TYPED)
def test_no_fact(records, name):
    """A verb outside the relation table with "for", "after" … ("granted bail for Reid"); "in Y" after a name that
    is the object of "against" (where the match was, not where New Zealand is); a compass word ("west of
    Burakin") is no role; a list of places: no typed edge."""
    assert not [r for r in records[name].relations if r[5] == "typed"]


def test_co_occurrence_pairs_neighbours(parsed, records):
    """Four places in a list: three co-occurrence pairs, each name with the next; every pair (the first
    definition) gives six."""
    pairs = {(r[1], r[3]) for r in records["list"].relations if r[5] == "co-occurrence"}
    assert pairs == {("Brisbane", "Sydney"), ("Brisbane", "Melbourne"), ("Melbourne", "Perth")}
    every = extract(parsed["list"], co_occurrence=CoOccurrence.SENTENCE)
    assert len([r for r in every.relations if r[5] == "co-occurrence"]) == 6


def test_co_occurrence_is_never_typed(records):
    """Two names in one sentence with no construction between them: context only."""
    rels = records["copula"].relations
    assert all(r[5] in ("typed", "co-occurrence") for r in rels)
    assert {r[4] for r in rels if r[5] == "co-occurrence"} == {"co_occurs_with"}


def test_found_relations_take_the_mentions_they_overlap():
    """Another model's relations (GLiNER2's): each end becomes the mention sharing most characters with it (then
    the higher score); a relation is dropped when an end overlaps no mention, when both ends are one mention,
    or when its ends lie in two sentences. The parse's own relations are not read."""
    text = "Sam Patel works for Orion Bank. Mary Cole lives in Leeds."
    sam, orion, orion_city = Mention(0, 9, "Sam Patel", "person"), Mention(20, 30, "Orion Bank", "company", 0.9), \
        Mention(20, 25, "Orion", "city", 0.99)
    mary, leeds = Mention(32, 41, "Mary Cole", "person"), Mention(51, 56, "Leeds", "city")
    doc = ParsedDoc("d", text, ((0, 31), (32, 57)), (sam, orion_city, orion, mary, leeds))

    def found(relation: str, head: tuple[int, int], tail: tuple[int, int]) -> FoundRelation:
        return FoundRelation(relation, head, tail, 0.8, "gliner2")

    record = extract(doc, found=[found("works for", (4, 9), (20, 30)),  # "Patel" -> Sam Patel; Orion Bank whole
                                 found("lives in", (32, 41), (51, 56)),
                                 found("lives in", (0, 9), (20, 25)),  # as much of both: the higher score
                                 found("works for", (10, 19), (20, 30)),  # "works for": no mention
                                 found("lives in", (51, 56), (51, 55)),  # both ends Leeds
                                 found("works for", (0, 9), (51, 56))])  # two sentences
    typed = [(r[1], r[4], r[3], r[6]["pattern"], r[6]["confidence"]) for r in record.relations if r[5] == "typed"]
    assert typed == [("Sam Patel", "works for", "Orion Bank", "gliner2", 0.8),
                     ("Mary Cole", "lives in", "Leeds", "gliner2", 0.8),
                     ("Sam Patel", "lives in", "Orion", "gliner2", 0.8)]
    assert [r[6]["source_span"] for r in record.relations if r[5] == "typed"] == [[0, 9], [32, 41], [0, 9]]
    assert not [r for r in extract(doc, found=[]).relations if r[5] == "typed"]
