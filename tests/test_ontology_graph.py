"""Pipeline stages below the tools: chunking, relations with evidence, graph building (incremental equals
one-shot), exports that re-read (GraphML with networkx, Turtle and JSON-LD with rdflib, JSON round trip),
and the store (atomic, bounded, expiring, surviving a new process). Parses come from the real spaCy model."""

from __future__ import annotations

import asyncio
import json

import networkx as nx
import pytest
import rdflib

from engine.catalog import Catalog
from engine.engine import Engine
from ontology.exports import to_rdf, write_all
from ontology.graph import KnowledgeGraph, extract
from ontology.inputs import Mention, ParsedDoc, Token
from ontology.relations import svo_triples
from ontology.store import GraphStore, GraphTooLarge
from tools.chunking import chunk_text, split_stream
from tools.ontology import to_parsed
from tools.parse import DEFAULT_PARSE_MODEL, parse

DOCS = {
    "a": "Microsoft acquired LinkedIn in 2016. Satya Nadella leads Microsoft.\n\nReid Hoffman founded LinkedIn.",
    "b": "Google is led by Sundar Pichai. Google acquired YouTube in 2006. YouTube is based in San Bruno.",
    "c": "International Business Machines is based in Armonk. IBM was founded in 1911. Arvind Krishna leads IBM.",
}


@pytest.fixture(scope="module")
def parsed() -> dict[str, ParsedDoc]:
    async def run():
        engine = Engine(Catalog.default())
        await engine.start()
        try:
            return await parse(engine, DEFAULT_PARSE_MODEL, list(DOCS.values()))
        finally:
            await engine.shutdown()

    parses = asyncio.run(run())
    return {k: to_parsed(k, t, [(0, p)]) for (k, t), p in zip(DOCS.items(), parses, strict=True)}


def test_chunks_keep_sentences_and_offsets():
    text = " ".join(f"Sentence number {i} ends here." for i in range(200))
    chunks = chunk_text(text, 300, overlap=0)
    assert all(len(c.text) <= 300 for c in chunks)
    # Consecutive, nothing but whitespace between them: every sentence is parsed once
    assert chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())
    assert all(not text[a.end:b.start].strip() for a, b in zip(chunks, chunks[1:]))
    assert all(text[c.start:c.end] == c.text and c.text.rstrip().endswith(".") for c in chunks)
    parts = list(split_stream((text[i:i + 97] for i in range(0, len(text), 97)), 300))
    assert "".join(parts) == text and all(len(p) <= 300 for p in parts)


def test_relation_evidence_points_at_the_sentence(parsed):
    doc = parsed["a"]
    kg = KnowledgeGraph()
    kg.add([extract(doc)])
    kg.rebuild()
    g = kg.graph
    acquire = g.edges["ORG:microsoft", "ORG:linkedin", "acquired"]
    ev = acquire["evidence"][0]
    assert acquire["kind"] == "typed" and acquire["weight"] == 1 and ev["pattern"] == "verb_object"
    assert ev["doc"] == "a" and ev["sentence"] == "Microsoft acquired LinkedIn in 2016."
    assert DOCS["a"][ev["sentence_start"]:ev["sentence_end"]].strip() == ev["sentence"]
    assert DOCS["a"][slice(*ev["source_span"])] == "Microsoft" and DOCS["a"][slice(*ev["target_span"])] == "LinkedIn"
    lead = g.edges["PERSON:satya_nadella", "ORG:microsoft", "heads"]["evidence"][0]
    assert lead["sentence"] == "Satya Nadella leads Microsoft." and DOCS["a"][slice(*lead["source_span"])] == \
        "Satya Nadella"
    found = g.edges["PERSON:reid_hoffman", "ORG:linkedin", "founded"]["evidence"][0]
    assert DOCS["a"][found["sentence_start"]:found["sentence_end"]].strip() == "Reid Hoffman founded LinkedIn."
    co = g.edges["ORG:linkedin", "ORG:microsoft", "co_occurs_with"]  # one undirected pair, smaller id first
    assert co["weight"] == 1 and co["kind"] == "co-occurrence"


def test_passive_with_agent_reads_as_active(parsed):
    g = KnowledgeGraph()
    g.add([extract(parsed["b"])])
    g.rebuild()
    assert g.graph.has_edge("PERSON:sundar_pichai", "ORG:google", "heads")
    assert g.graph.has_edge("ORG:google", "ORG:youtube", "acquired")
    assert g.graph.has_edge("ORG:youtube", "GPE:san_bruno", "based_in")


def test_svo_on_a_constructed_parse():
    """A hand-built parse: 'Ann and Bob joined Acme.' (conjoined subjects, both get the relation)."""
    text = "Ann and Bob joined Acme."
    toks = (Token(0, 3, "Ann", "Ann", "PROPN", "nsubj", 3), Token(4, 7, "and", "and", "CCONJ", "cc", 0),
            Token(8, 11, "Bob", "Bob", "PROPN", "conj", 0), Token(12, 18, "joined", "join", "VERB", "ROOT", 3),
            Token(19, 23, "Acme", "Acme", "PROPN", "dobj", 3), Token(23, 24, ".", ".", "PUNCT", "punct", 3))
    ms = (Mention(0, 3, "Ann", "PERSON"), Mention(8, 11, "Bob", "PERSON"), Mention(19, 23, "Acme", "ORG"))
    doc = ParsedDoc("d", text, ((0, 24),), ms, toks)
    rels = svo_triples(doc, {m: m.text for m in ms})
    assert sorted((r.source, r.relation, r.target) for r in rels) == [("Ann", "works_for", "Acme"),
                                                                      ("Bob", "works_for", "Acme")]


def _build(records, vectors=None) -> KnowledgeGraph:
    kg = KnowledgeGraph()
    kg.add(records)
    kg.rebuild(vectors)
    return kg


def test_incremental_equals_one_shot(parsed):
    records = [extract(d) for d in parsed.values()]
    once = _build(records)
    step = KnowledgeGraph()
    for r in reversed(records):
        step.add([r])
        step.rebuild()
    assert once.to_json() == step.to_json()
    ibm = once.graph.nodes["ORG:international_business_machines"]
    assert ibm["aliases"] == ["IBM"] and ibm["documents"] == 1
    assert once.graph.has_edge("PERSON:arvind_krishna", "ORG:international_business_machines", "heads")
    # the ontology layer: types are classes, instances point at them
    assert once.graph.nodes["class:PERSON"]["kind"] == "class"
    assert once.graph.has_edge("PERSON:arvind_krishna", "class:PERSON", "instance_of")


def test_taxonomy_places_classes(parsed):
    kg = KnowledgeGraph(taxonomy={"PERSON": ["Agent", "Person"], "ORG": ["Agent", "Organization"]})
    kg.add([extract(parsed["a"])])
    kg.rebuild()
    g = kg.graph
    assert g.has_edge("class:PERSON", "class:Agent/Person", "subclass_of")
    assert g.has_edge("class:Agent/Person", "class:Agent", "subclass_of")
    assert g.has_edge("class:ORG", "class:Agent/Organization", "subclass_of")


def test_exports_validate(parsed, tmp_path):
    kg = _build([extract(d) for d in parsed.values()])
    paths = write_all(kg, tmp_path)
    assert sorted(p.name for p in paths) == ["graph.graphml", "graph.html", "graph.json", "graph.jsonld", "graph.ttl"]
    back = KnowledgeGraph.from_json(json.loads((tmp_path / "graph.json").read_text()))
    assert nx.utils.graphs_equal(back.graph, kg.graph) and back.to_json() == kg.to_json()
    gml = nx.read_graphml(tmp_path / "graph.graphml", force_multigraph=True)
    assert set(gml.nodes) == set(kg.graph.nodes) and gml.number_of_edges() == kg.graph.number_of_edges()
    assert json.loads(gml.nodes["ORG:international_business_machines"]["aliases"]) == ["IBM"]
    expected = len(to_rdf(kg))
    for name, fmt in (("graph.ttl", "turtle"), ("graph.jsonld", "json-ld")):
        rdf = rdflib.Graph().parse(tmp_path / name, format=fmt)
        assert len(rdf) == expected
        labels = {str(o) for o in rdf.objects(predicate=rdflib.RDFS.label)}
        assert {"International Business Machines", "Satya Nadella", "Microsoft"} <= labels
        rel = rdflib.URIRef("https://w3id.org/sie-mcp/kg/relation/acquired")
        assert len(list(rdf.triples((None, rel, None)))) == 2  # Microsoft->LinkedIn, Google->YouTube


def test_store_round_trip_and_size_refusal(parsed, tmp_path):
    """The database store keeps a saved graph as it was (more in tests/test_graph_store.py)."""
    kg = _build([extract(d) for d in parsed.values()])
    store = GraphStore(tmp_path)
    store.save("g", kg)
    back = store.load("g")
    assert back.to_json()["nodes"] == kg.to_json()["nodes"] and back.to_json()["edges"] == kg.to_json()["edges"]
    store.max_bytes = 100
    with pytest.raises(GraphTooLarge):
        store.save("big", kg)
    assert not store.exists("big")
