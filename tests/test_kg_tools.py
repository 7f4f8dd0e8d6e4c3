"""The knowledge-graph tools over the database store, with the real default models (spaCy parse, MiniLM for
resolution): a build answers its summary, the navigation tools read bounded pieces, a build cancelled in flight
leaves the graph as it was, a second build adds to it, and only new surface forms are embedded."""

from __future__ import annotations

import asyncio

import pytest

from engine.catalog import Catalog
from engine.engine import Engine
from ontology.errors import UnknownEntity, UnknownGraph
from ontology.store import GraphStore
from tools.context import ToolContext
from tools.ontology import GraphService, build_ontology, graph_neighbors, graph_path, graph_search, graph_subgraph

DOCS = [
    {"id": "a", "text": "Microsoft acquired LinkedIn in 2016. Satya Nadella leads Microsoft. Reid Hoffman founded "
                        "LinkedIn."},
    {"id": "b", "text": "Google acquired YouTube in 2006. YouTube is based in San Bruno. Sundar Pichai leads Google."},
]


@pytest.fixture()
def store(tmp_path):
    store = GraphStore(tmp_path / "graphs")
    yield store
    store.close()


def test_build_navigate_cancel_and_add(store):
    async def scenario():
        engine = Engine(Catalog.default())
        await engine.start()
        try:
            await steps(ToolContext(engine, graphs=GraphService(store)))
        finally:
            await engine.shutdown()

    async def steps(ctx):
        first = await build_ontology(ctx, documents=DOCS[:1], graph="g")
        assert first.documents == 1 and first.added == 1 and first.nodes >= 3
        assert "acquired" in first.relation_types
        before = ctx.graphs.store.read_text("g")
        # a build cancelled while it runs leaves the graph exactly as it was
        # (40 documents: on a quiet machine one small document is built in less than the wait)
        many = [{"id": f"b{i}", "text": DOCS[1]["text"]} for i in range(40)]
        task = asyncio.ensure_future(build_ontology(ctx, documents=many, graph="g"))
        await asyncio.sleep(0.02)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ctx.graphs.store.read_text("g") == before
        embedded = []
        original = ctx.graphs.store.missing_vectors

        def spy(graph, texts):
            out = original(graph, texts)
            embedded.extend(out)
            return out

        ctx.graphs.store.missing_vectors = spy
        second = await build_ontology(ctx, documents=DOCS[1:], graph="g")
        assert second.documents == 2 and second.added == 1
        assert "Microsoft" not in embedded and "Google" in embedded  # forms already stored are not re-embedded
        n = await graph_neighbors(ctx, "g", "Microsoft")
        assert {x.name for x in n.neighbors} >= {"LinkedIn", "Satya Nadella"}
        assert any(x.via.relation == "acquired" for x in n.neighbors)
        p = await graph_path(ctx, "g", "Satya Nadella", "Reid Hoffman")
        assert p.found and [h.from_name for h in p.hops][0] == "Satya Nadella"
        s = await graph_subgraph(ctx, "g", ["Google", "YouTube", "Nobody Known"])
        assert s.unknown == ["Nobody Known"] and any(e.relation == "acquired" for e in s.edges)
        hits = await graph_search(ctx, "g", "YouTube")
        assert hits.matches[0].name == "YouTube" and hits.matches[0].match == "name"
        fuzzy = await graph_search(ctx, "g", "video sharing website")  # no word in common: the stored vectors
        assert fuzzy.matches and all(m.match == "embedding" for m in fuzzy.matches)
        with pytest.raises(UnknownEntity):
            await graph_neighbors(ctx, "g", "Nobody Known")
        with pytest.raises(UnknownGraph):
            await graph_neighbors(ctx, "missing", "Microsoft")

    asyncio.run(scenario())


def test_relations_are_mapped_onto_the_callers_labels(store):
    async def scenario():
        engine = Engine(Catalog.default())
        await engine.start()
        try:
            ctx = ToolContext(engine, graphs=GraphService(store))
            return await build_ontology(ctx, documents=DOCS, graph="r", relations=["bought", "started the company"])
        finally:
            await engine.shutdown()

    result = asyncio.run(scenario())
    kg = store.load("r")
    typed = {(kg.graph.nodes[u]["label"], k, kg.graph.nodes[v]["label"])
             for u, v, k, d in kg.graph.edges(keys=True, data=True) if d["kind"] == "typed"}
    assert ("Microsoft", "bought", "LinkedIn") in typed and ("Reid Hoffman", "started the company", "LinkedIn") in typed
    assert {k for _, k, _ in typed} <= {"bought", "started the company"}  # "heads", "based_in": no label: dropped
    assert "co_occurs_with" in result.relation_types
