"""Models by role in build_ontology: spaCy parses, a zero-shot GLiNER model registered by path finds the entities,
and the graph's types (its nodes' and its ontology classes) are exactly the caller's labels."""

from __future__ import annotations

import asyncio

import pytest

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import InvalidInput
from ontology.store import GraphStore
from tests.gliner_tiny import tiny_gliner
from tools.context import ToolContext
from tools.ontology import GraphService, build_ontology

DOCS = [{"id": "a", "text": "Maria Lopez, the mayor of Springfield, opened the bridge. Microsoft acquired LinkedIn."},
        {"id": "b", "text": "Sam Patel works for Orion Bank in Leeds and visited Paris with John Smith."}]


def test_zero_shot_build_gives_only_the_callers_labels(tmp_path):
    model_dir = tiny_gliner(tmp_path / "tiny-gliner")
    catalog = Catalog.default()
    catalog.add(CatalogEntry(id="tiny-gliner", source=f"path:{model_dir}", task="ner", runtime="gliner",
                             dtype="float32"))
    store = GraphStore(tmp_path / "graphs")
    labels = ["person", "city"]

    async def run():
        engine = Engine(catalog)
        await engine.start()
        try:
            ctx = ToolContext(engine, graphs=GraphService(store))
            with pytest.raises(InvalidInput, match="labels"):
                await build_ontology(ctx, documents=DOCS, model="tiny-gliner", graph="z")
            return await build_ontology(ctx, documents=DOCS, model="tiny-gliner", labels=labels, graph="z")
        finally:
            await engine.shutdown()

    result = asyncio.run(run())
    assert result.nodes > 0 and set(result.classes) <= set(labels)
    kg = store.load("z")
    types = {d["type"] for _, d in kg.graph.nodes(data=True) if d["kind"] == "entity"}
    assert types and types <= set(labels)
    assert {d["label"] for _, d in kg.graph.nodes(data=True) if d["kind"] == "class"} <= set(labels)
    assert not store.exists("zz")
    store.close()
