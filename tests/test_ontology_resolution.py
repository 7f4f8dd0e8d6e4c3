"""Entity resolution: a constructed alias set merges, a constructed trap set does not, and the result does
not depend on input order. Embeddings come from the real all-MiniLM-L6-v2 through the engine."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from engine.catalog import Catalog
from engine.engine import Engine
from ontology.resolution import Form, is_acronym, normalize, resolve

ALIASES = [  # (label, surface form, the canonical entity it must join)
    ("ORG", "IBM", "International Business Machines"),
    ("ORG", "I.B.M.", "International Business Machines"),
    ("ORG", "International Business Machines", "International Business Machines"),
    ("ORG", "International Business Machines Corp.", "International Business Machines"),
    ("ORG", "the United Nations", "United Nations"),
    ("ORG", "U.N.", "United Nations"),
    ("ORG", "NASA", "National Aeronautics and Space Administration"),
    ("ORG", "National Aeronautics and Space Administration", "National Aeronautics and Space Administration"),
    ("ORG", "Apple Inc.", "Apple"),
    ("ORG", "Apple", "Apple"),
    ("ORG", "AT&T", "AT and T"),
    ("ORG", "AT and T", "AT and T"),
    ("PERSON", "Marie Curie", "Marie Curie"),
    ("PERSON", "Marie Curie's", "Marie Curie"),
    ("GPE", "Zürich", "Zurich"),
    ("GPE", "Zurich", "Zurich"),
    ("LOC", "Zurich", "Zurich"),  # another place type: same family, one node
    ("PERSON", "Satya Nadella", "Satya Nadella"),
    ("PERSON", "Nadella", "Satya Nadella"),
]
TRAPS = [  # (label, surface form) pairs that must stay distinct entities
    [("GPE", "Paris"), ("PERSON", "Paris Hilton")],
    [("PERSON", "Paris Hilton"), ("ORG", "Hilton Hotels")],
    [("PERSON", "Marie Curie"), ("PERSON", "Pierre Curie"), ("PERSON", "Curie")],  # ambiguous surname
    [("GPE", "North Korea"), ("GPE", "South Korea")],
    [("ORG", "Google"), ("ORG", "Google DeepMind")],
    [("GPE", "Washington"), ("PERSON", "George Washington")],
    [("ORG", "Microsoft"), ("ORG", "Apple")],
    [("GPE", "Austria"), ("GPE", "Australia")],
    [("ORG", "UN"), ("ORG", "University of Nevada"), ("ORG", "United Nations")],  # ambiguous acronym
]


@pytest.fixture(scope="module")
def vectors():
    names = sorted({t for _, t, _ in ALIASES} | {t for trap in TRAPS for _, t in trap})

    async def run():
        engine = Engine(Catalog.default())
        await engine.start()
        try:
            return (await engine.embed("all-MiniLM-L6-v2", names)).vectors.float().numpy()
        finally:
            await engine.shutdown()

    return dict(zip(names, asyncio.run(run()), strict=True))


@pytest.fixture(scope="module")
def vectors_of():
    """texts -> {text: MiniLM vector}, one engine for the module."""
    cache: dict[str, np.ndarray] = {}

    def get(texts):
        missing = sorted(set(texts) - set(cache))
        if missing:
            async def run():
                engine = Engine(Catalog.default())
                await engine.start()
                try:
                    return (await engine.embed("all-MiniLM-L6-v2", missing)).vectors.float().numpy()
                finally:
                    await engine.shutdown()

            cache.update(zip(missing, asyncio.run(run()), strict=True))
        return {t: cache[t] for t in texts}

    return get


def test_normalize_and_acronyms():
    assert normalize("I.B.M.") == normalize("IBM") == "ibm"
    assert normalize("The Eiffel Tower") == "eiffel tower"
    assert normalize("Apple Inc.", "ORG") == "apple" and normalize("Apple Inc.", "PERSON") == "apple inc"
    assert is_acronym("NASA") and is_acronym("U.N.") and not is_acronym("Nasa") and not is_acronym("A")


def test_alias_set_merges(vectors):
    resolved = resolve([Form(t, label) for label, t, _ in ALIASES], vectors)
    by_canonical: dict[str, set[str]] = {}
    for label, text, canonical in ALIASES:
        by_canonical.setdefault(canonical, set()).add(resolved[(label, text)].id)
    assert all(len(ids) == 1 for ids in by_canonical.values()), by_canonical
    assert len({i for ids in by_canonical.values() for i in ids}) == len(by_canonical)  # and no more than that
    ibm = resolved[("ORG", "IBM")]
    assert ibm.name == "International Business Machines" and ibm.type == "ORG"
    assert set(ibm.aliases) == {"IBM", "I.B.M.", "International Business Machines Corp."}
    assert resolved[("LOC", "Zurich")].type == "GPE"  # two GPE votes (Zürich, Zurich) over one LOC


@pytest.mark.parametrize("trap", TRAPS, ids=lambda t: " / ".join(x for _, x in t))
def test_trap_set_stays_apart(trap, vectors):
    resolved = resolve([Form(t, label) for label, t in trap], vectors)
    assert len({resolved[k].id for k in trap}) == len(trap)


def test_trap_set_together_stays_apart(vectors):
    """All traps at once (more candidates for each rule to confuse)."""
    keys = sorted({k for trap in TRAPS for k in trap})
    resolved = resolve([Form(t, label) for label, t in keys], vectors)
    for trap in TRAPS:
        assert len({resolved[k].id for k in trap}) == len(trap), trap


def test_embedding_step_merges_above_threshold_only():
    """The similarity step on caller-given vectors: cosine 0.95 joins, 0.8 does not."""
    v = {"Tchaikovsky": np.array([1.0, 0.0]), "Tschaikowsky": np.array([0.95, np.sqrt(1 - 0.95**2)]),
         "Stravinsky": np.array([0.8, -0.6])}
    resolved = resolve([Form(t, "PERSON") for t in v], v)
    assert resolved[("PERSON", "Tchaikovsky")].id == resolved[("PERSON", "Tschaikowsky")].id
    assert resolved[("PERSON", "Stravinsky")].id != resolved[("PERSON", "Tchaikovsky")].id
    assert resolve([Form(t, "PERSON") for t in v], None)[("PERSON", "Tschaikowsky")].aliases == []


def test_order_does_not_matter(vectors):
    forms = [Form(t, label, 1 + i % 3) for i, (label, t, _) in enumerate(ALIASES)]
    forms += [Form(t, label) for trap in TRAPS for label, t in trap]
    first = resolve(forms, vectors)
    shuffled = forms[:]
    random.Random(1).shuffle(shuffled)
    second = resolve(shuffled, vectors)
    assert {k: (e.id, e.name, e.aliases) for k, e in first.items()} == \
        {k: (e.id, e.name, e.aliases) for k, e in second.items()}


def _entities(forms, vectors=None):
    resolved = resolve([Form(t, label) for label, t in forms], vectors)
    return {t: resolved[(label, t)].id for label, t in forms}


def test_middle_initials_and_given_names_are_different_people(vectors_of):
    forms = [("PERSON", "Amara J. Brandt"), ("PERSON", "Amara K. Brandt"), ("PERSON", "Amara Brandt"),
             ("PERSON", "John Whitfield"), ("PERSON", "Jane Whitfield"), ("PERSON", "Brandt")]
    ids = _entities(forms, vectors_of([t for _, t in forms]))
    assert len({ids["Amara J. Brandt"], ids["Amara K. Brandt"], ids["John Whitfield"], ids["Jane Whitfield"]}) == 4
    assert ids["Brandt"] not in (ids["Amara J. Brandt"], ids["Amara K. Brandt"])  # ambiguous surname: apart


def test_surname_particles_resolve_to_the_full_name(vectors_of):
    forms = [("PERSON", "Osama bin Laden"), ("PERSON", "bin Laden"), ("PERSON", "Pieter van der Berg"),
             ("PERSON", "van der Berg"), ("PERSON", "Laden")]
    ids = _entities(forms, vectors_of([t for _, t in forms]))
    assert ids["bin Laden"] == ids["Osama bin Laden"] == ids["Laden"]
    assert ids["van der Berg"] == ids["Pieter van der Berg"] != ids["Osama bin Laden"]
    # without the full name in the graph, the particle surname stands alone
    assert len(set(_entities([("PERSON", "bin Laden"), ("PERSON", "van der Berg")]).values())) == 2


CITY_TRAPS = [  # a city and a longer name after it (a race, an event, a company, a team): never one entity,
    # even when the small model calls the city a person
    [("GPE", "Sydney"), ("PERSON", "Sydney"), ("PERSON", "Sydney-Hobart"), ("EVENT", "Sydney-Hobart")],
    [("PERSON", "Melbourne"), ("GPE", "Melbourne"), ("PERSON", "Melbourne Track Classic")],
    [("GPE", "Brisbane"), ("PERSON", "Brisbane"), ("PERSON", "Brisbane Broncos"), ("ORG", "Brisbane Broncos")],
    [("GPE", "Adelaide"), ("ORG", "Adelaide Bank"), ("ORG", "Adelaide")],
    [("GPE", "Perth"), ("EVENT", "Perth Festival"), ("PERSON", "Perth")],
    [("GPE", "Hobart"), ("ORG", "Hobart Airport")],
]


@pytest.mark.parametrize("trap", CITY_TRAPS, ids=lambda t: t[0][1])
def test_a_city_is_never_aliased_to_a_longer_name(trap, vectors_of):
    resolved = resolve([Form(t, label) for label, t in trap], vectors_of([t for _, t in trap]))
    city = trap[0][1]
    entity = resolved[("GPE", city)] if ("GPE", city) in resolved else resolved[trap[0]]
    assert all(len(a.split()) == 1 and "-" not in a for a in [entity.name, *entity.aliases]), entity
    for label, text in trap:
        if normalize(text) != normalize(city):
            assert resolved[(label, text)].id != entity.id


def test_same_forms_in_any_order_or_split_give_the_same_entities(vectors_of):
    forms = [Form(t, label, 1 + i % 3) for i, (label, t, _) in enumerate(ALIASES)]
    forms += [Form(t, label) for trap in TRAPS + CITY_TRAPS for label, t in trap]
    vecs = vectors_of(sorted({f.text for f in forms}))
    base = {k: (e.id, e.name, e.aliases) for k, e in resolve(forms, vecs).items()}
    rng = random.Random(7)
    for _ in range(5):
        shuffled = forms[:]
        rng.shuffle(shuffled)
        cut = rng.randrange(1, len(shuffled))  # counts given in two pieces sum
        again = resolve(shuffled[:cut] + shuffled[cut:], vecs)
        assert {k: (e.id, e.name, e.aliases) for k, e in again.items()} == base


def test_names_with_different_numbers_stay_apart(vectors_of):
    forms = [("ORG", "Firm19 Labs"), ("ORG", "Firm21 Labs"), ("PRODUCT", "Apollo 11"), ("PRODUCT", "Apollo 13")]
    ids = _entities(forms, vectors_of([t for _, t in forms]))
    assert len(set(ids.values())) == 4
