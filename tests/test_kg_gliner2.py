"""build_ontology with a GLiNER2 entity model and `relations`: a random GLiNER2 (built offline by the gliner2
reference package, shaped as tests/test_gliner2.py shapes it, so that it finds entities and relations) registered
by path. Each chunk goes through GLiNER2 once, with one schema holding the entity labels and the relations; the
typed edges are exactly the relations `engine.schema_extract` finds for those chunks whose two ends are entity
mentions of one sentence, named by the caller's labels, with evidence offsets into the document and the
model's score as confidence. Co-occurrence edges stay co-occurrence. Random weights make the decisions
arbitrary: the test compares with what the engine itself returns, and checks the comparison is not empty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mcp import Client

import tools.ontology
from engine.catalog import Catalog
from engine.engine import Engine
from engine.gliner2_decoding import RelationValue, TextResult
from engine.models.gliner2_prompt import TaskKind
from ontology.graph import DocRecord
from ontology.relations import CO_OCCURRENCE, CO_OCCURS, TYPED
from ontology.store import GraphStore
from tests.gliner_fixtures import build_tokenizer, deberta_v3, run_gliner2_reference, vocab_size
from tests.test_gliner2 import SHAPE
from tools.chunking import Chunk, chunk_text
from tools.context import ToolContext
from tools.gliner2 import DEFAULT_THRESHOLD, entities_relations_schema
from tools.ontology import GLINER2_PATTERN, GraphService, build_ontology

pytestmark = pytest.mark.slow

LABELS = ["person", "company", "city"]
RELATIONS = ["works for", "lives in", "founded"]
DOCS = [{"id": "a", "text": "John Smith works for Apple in London. Mary Smith founded a software company in Paris. "
                            "The doctor lives in New York with John."},
        {"id": "b", "text": "The president of the company bought a phone in London and the engineer sold software "
                            "to people in Paris. Mary visited the bank with her doctor."}]
CHUNK = 90  # characters: the documents are read in several chunks, so offsets must be shifted into them


@pytest.fixture(scope="module")
def gliner2_dir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("kg_gliner2")
    tok = build_tokenizer(work / "tokenizer")
    spec = {"tokenizer": str(tok), "out": str(work / "out"), "cases": [
        {"name": "kg", "encoder_config": deberta_v3(vocab_size(tok)), "seed": 0, "max_width": 8, "shape": SHAPE,
         "texts": [d["text"] for d in DOCS], "runs": []}]}
    return run_gliner2_reference(spec, work) / "kg" / "model"


def _chunks(text: str) -> list[Chunk]:
    return chunk_text(text, CHUNK, overlap=0)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return min(a[1], b[1]) > max(a[0], b[0])


def _spans(r: RelationValue, offset: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((r.head.start or 0) + offset, (r.head.end or 0) + offset), ((r.tail.start or 0) + offset,
                                                                        (r.tail.end or 0) + offset)


def _expected(record: DocRecord, found: list[tuple[Chunk, TextResult]]) -> list[tuple]:
    """The relations the engine found whose head and tail each overlap a mention of the record, all those
    mentions in one sentence, no mention at one end the same surface form as one at the other: these must be
    edges (an end overlapping several mentions takes one of them)."""
    out = []
    for chunk, result in found:
        for r in result.relations:
            head, tail = _spans(r, chunk.start)
            hs = [m for m in record.mentions if _overlaps((m[2], m[3]), head)]
            ts = [m for m in record.mentions if _overlaps((m[2], m[3]), tail)]
            if not hs or not ts or len({m[4] for m in hs + ts}) > 1:
                continue
            if {(m[0], m[1]) for m in hs} & {(m[0], m[1]) for m in ts}:
                continue
            out.append((r.relation, head, tail, round(min(r.head.score, r.tail.score), 4)))
    return out


def _check_record(record: DocRecord, text: str, found: list[tuple[Chunk, TextResult]]) -> tuple[int, int]:
    """Every typed row is one of the engine's relations (label, confidence, ends overlapping its mentions), and
    every relation `_expected` names is a row. Returns (rows, relations the engine found)."""
    rows = [r for r in record.relations if r[5] == TYPED]
    unused = list(range(len(rows)))
    found_all = [(r.relation, *_spans(r, c.start), round(min(r.head.score, r.tail.score), 4))
                 for c, res in found for r in res.relations]
    for relation, head, tail, confidence in _expected(record, found):
        match = [i for i in unused if rows[i][4] == relation and rows[i][6]["confidence"] == confidence
                 and _overlaps(tuple(rows[i][6]["source_span"]), head)
                 and _overlaps(tuple(rows[i][6]["target_span"]), tail)]
        assert match, (relation, head, tail)
        unused.remove(match[0])
    mentions = {(m[0], m[1], m[2], m[3]) for m in record.mentions}
    for sl, st, tl, tt, relation, _, ev in rows:
        assert relation in RELATIONS and ev["pattern"] == GLINER2_PATTERN and 0 < ev["confidence"] <= 1
        (a, b), (c, d) = ev["source_span"], ev["target_span"]
        assert (sl, st, a, b) in mentions and (tl, tt, c, d) in mentions
        assert text[a:b] == st and text[c:d] == tt  # the evidence points at the two ends in the document
        assert ev["sentence_start"] <= min(a, c) and max(b, d) <= ev["sentence_end"]
        assert text[ev["sentence_start"]:ev["sentence_end"]].strip() == ev["sentence"]
        assert any(rel == relation and conf == ev["confidence"] and _overlaps((a, b), h) and _overlaps((c, d), t)
                   for rel, h, t, conf in found_all)  # every edge is a relation the model found
    return len(rows), len(found_all)


def test_gliner2_relations_become_the_typed_edges(gliner2_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(tools.ontology, "CHUNK_CHARS", CHUNK)
    assert all(len(_chunks(d["text"])) > 1 for d in DOCS)
    catalog = Catalog.default()
    catalog.register_path(f"tiny-gliner2={gliner2_dir}")
    store = GraphStore(tmp_path / "graphs")
    calls: list[tuple[list[str], set[TaskKind]]] = []

    async def run():
        engine = Engine(catalog)
        await engine.start()
        original = engine.schema_extract

        async def counted(model_id, texts, schema, threshold):  # the real call, counted
            calls.append((list(texts), {t.kind for t in schema.tasks}))
            return await original(model_id, texts, schema, threshold)

        engine.schema_extract = counted  # type: ignore[method-assign]
        try:
            ctx = ToolContext(engine, graphs=GraphService(store))
            result = await build_ontology(ctx, documents=DOCS, model="tiny-gliner2", labels=LABELS,
                                          relations=RELATIONS, graph="g")
            texts = [c.text for d in DOCS for c in _chunks(d["text"])]
            assert calls == [(texts, {TaskKind.ENTITIES, TaskKind.RELATIONS})]  # one forward for both
            found = await original("tiny-gliner2", texts, entities_relations_schema(LABELS, RELATIONS),
                                   DEFAULT_THRESHOLD)
            calls.clear()
            plain = await build_ontology(ctx, documents=DOCS, model="tiny-gliner2", labels=LABELS, graph="p")
            assert calls == [(texts, {TaskKind.ENTITIES})]  # no relations asked: GLiNER2 finds the entities only
            return result, found, plain
        finally:
            await engine.shutdown()

    result, found, plain = asyncio.run(run())
    kg = store.load("g")
    chunks = [(d, c) for d in DOCS for c in _chunks(d["text"])]
    rows = relations = 0
    for doc in DOCS:
        per_doc = [(c, res) for (d, c), res in zip(chunks, found, strict=True) if d is doc]
        n, m = _check_record(kg.records[doc["id"]], doc["text"], per_doc)
        rows, relations = rows + n, relations + m
    # some relations became edges, some were dropped (this random model's head and tail are often one span)
    assert 0 < rows < relations
    assert set(result.relation_types) - {CO_OCCURS} <= set(RELATIONS)
    for a, b, data in kg.graph.edges(data=True):
        if data["kind"] == TYPED:
            assert data["relation"] in RELATIONS and data["evidence"]
            assert all(0 < ev["confidence"] <= 1 and ev["pattern"] == GLINER2_PATTERN for ev in data["evidence"])
        elif data["kind"] == CO_OCCURRENCE:
            assert data["relation"] == CO_OCCURS and all("confidence" not in ev for ev in data["evidence"])
    assert any(d["kind"] == CO_OCCURRENCE for *_, d in kg.graph.edges(data=True))
    without = store.load("p")
    assert not any(ev.get("pattern") == GLINER2_PATTERN for r in without.records.values() for *_, ev in r.relations)
    assert plain.nodes > 0
    store.close()


@pytest.mark.anyio
async def test_over_mcp_the_typed_edges_carry_the_callers_labels(gliner2_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(tools.ontology, "CHUNK_CHARS", CHUNK)  # (read whole, the random model's ends coincide)
    from sie_mcp.mcp_server import build_mcp, owned_runtime
    from sie_mcp.runtime import build_runtime
    from sie_mcp.settings import Settings

    settings = Settings(model=[f"tiny-gliner2={gliner2_dir}"], data_dir=tmp_path)
    server = build_mcp(owned_runtime(build_runtime(settings), []))
    async with Client(server) as client:
        built = await client.call_tool("build_ontology", {"documents": DOCS, "model": "tiny-gliner2",
                                                          "labels": LABELS, "relations": RELATIONS, "graph": "m"})
        assert not built.is_error, built.content
        out = built.structured_content
        typed = set(out["relation_types"]) - {CO_OCCURS}
        assert typed and typed <= set(RELATIONS)
        top = out["top_entities"][0]["name"]
        near = await client.call_tool("graph_neighbors", {"graph": "m", "entity": top})
        assert not near.is_error, near.content
        neighbors = near.structured_content["neighbors"]
        assert neighbors and all(n["via"]["relation"] in [*RELATIONS, CO_OCCURS] for n in neighbors)
