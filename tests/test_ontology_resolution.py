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
