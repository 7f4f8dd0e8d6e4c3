"""The knowledge-graph tools: build_ontology and the navigation tools, over ontology/ (a pure library).

This layer runs the models: documents are chunked (tools.chunking), parsed by the spaCy pipeline
(entities + dependency parse, tools.parse), turned into ontology's input dataclasses, extracted, and the
surface forms embedded with the default embedding model for entity resolution; an optional taxonomy places
the entity types through `classify`. Graphs live in a `GraphService` (the store plus per-graph locks and a
cache of entity-name vectors for graph_search's embedding fallback).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import InputTooLong, InvalidInput
from ontology.errors import UnknownEntity, UnknownGraph
from engine.parse import DocParse
from ontology import navigate
from tools.chunking import chunk_text
from ontology.graph import KnowledgeGraph, extract
from ontology.inputs import Mention, ParsedDoc, Token
from ontology.store import GraphNotFound, GraphStore, GraphTooLarge, valid_id
from tools.classify import classify
from tools.context import ToolContext, as_texts
from tools.embed import embed_texts
from tools.labels import type_names
from tools.graph_schemas import (
    BuildOntologyResult,
    EntityCard,
    GraphNeighborsResult,
    GraphPathResult,
    GraphSearchResult,
    GraphSubgraphResult,
    SearchMatch,
    TopEntity,
)
from tools.parse import DEFAULT_PARSE_MODEL, parse
from tools.taxonomy import parse_taxonomy
from tools.taxonomy_limits import check_taxonomy

CHUNK_CHARS = 20_000  # parse long documents in sentence-aligned pieces of at most this many characters
PARSE_BATCH = 16  # chunks per parse call: the unit of progress
MAX_RESULTS = 50
# What an agent's label words mean in spaCy's OntoNotes types
# Words the taxonomy classifier reads for each type (the bare tag says little to an embedder)
TYPE_TEXT = {"PERSON": "person, people", "ORG": "organization, company, institution, agency",
             "GPE": "country, city, state", "LOC": "location, region, mountain, river",
             "FAC": "facility, building, airport, bridge", "NORP": "nationality, religious or political group",
             "PRODUCT": "product, device, vehicle, software", "EVENT": "event, war, hurricane, sports event",
             "WORK_OF_ART": "book, song, film, work of art", "LAW": "law, treaty, legal document",
             "LANGUAGE": "language"}


def to_parsed(doc_id: str, text: str, parses: Sequence[tuple[int, DocParse]]) -> ParsedDoc:
    """A document parsed in chunks -> one ParsedDoc (offsets and token heads shifted into the document)."""
    tokens: list[Token] = []
    sentences: list[tuple[int, int]] = []
    mentions: list[Mention] = []
    for offset, p in parses:
        base = len(tokens)
        tokens += [Token(t.start + offset, t.end + offset, t.text, t.lemma, t.pos, t.dep, t.head + base)
                   for t in p.tokens]
        sentences += [(s + offset, e + offset) for s, e in p.sentences]
        mentions += [Mention(e.start + offset, e.end + offset, e.text, e.label, e.score) for e in p.entities]
    return ParsedDoc(doc_id, text, tuple(sentences), tuple(mentions), tuple(tokens))


def wanted_types(labels: list[str] | None) -> set[str] | None:
    if not labels:
        return None
    out: set[str] = set()
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise InvalidInput("labels must be non-empty strings, e.g. ['person', 'organization', 'place']")
        out.update(type_names(label))
    return out


@dataclass
class GraphService:
    """Graphs for the tools: the store, one lock per graph (builds of one graph never interleave), and a
    small cache of entity-name vectors per graph version for graph_search."""

    store: GraphStore
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _name_vectors: OrderedDict[str, tuple[KnowledgeGraph, list[str], np.ndarray]] = field(
        default_factory=OrderedDict)

    def lock(self, graph_id: str) -> asyncio.Lock:
        return self._locks.setdefault(graph_id, asyncio.Lock())

    async def load(self, graph_id: str) -> KnowledgeGraph:
        try:
            return await asyncio.to_thread(self.store.load, graph_id)
        except GraphNotFound as e:
            known = ", ".join(i.id for i in self.store.list()[:10]) or "none yet"
            raise UnknownGraph(f"{e.args[0]}; known graphs: {known}. Build one with build_ontology") from None


def _service(ctx: ToolContext) -> GraphService:
    if ctx.graphs is None:
        raise InvalidInput("this server keeps no graphs (no data directory configured)")
    return ctx.graphs


def _doc_id(text: str) -> str:
    return "doc-" + hashlib.sha1(text.encode()).hexdigest()[:12]


def _documents(ctx: ToolContext, texts: str | list[str] | None,
               documents: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    if (texts is None) == (documents is None):
        raise InvalidInput("give either `texts` (strings) or `documents` ([{id, text}]), not both")
    if texts is not None:
        items = as_texts(texts, ctx.limits)
        return [(_doc_id(t), t) for t in items]
    assert documents is not None
    if not documents:
        raise InvalidInput("documents is empty: send at least one {id, text}")
    if len(documents) > ctx.limits.max_texts:
        raise InputTooLong(f"documents has {len(documents)} items; the limit is {ctx.limits.max_texts} per call: "
                           "split the call (pass the same `graph` to add to it)")
    out, seen = [], set()
    for i, d in enumerate(documents):
        text, doc_id = d.get("text"), d.get("id")
        if not isinstance(text, str):
            raise InvalidInput(f"documents[{i}] needs a 'text' string")
        if len(text) > ctx.limits.max_chars:
            raise InputTooLong(f"documents[{i}] has {len(text)} characters; the limit is {ctx.limits.max_chars}")
        doc_id = str(doc_id) if doc_id not in (None, "") else _doc_id(text)
        if doc_id in seen:
            raise InvalidInput(f"documents[{i}]: id {doc_id!r} appears twice in this call")
        seen.add(doc_id)
        out.append((doc_id, text))
    return out


async def _taxonomy_paths(ctx: ToolContext, types: list[str], taxonomy: list[str] | dict[str, Any]
                          ) -> dict[str, list[str]]:
    if not types:  # nothing to place (no entities found)
        return {}
    result = await classify(ctx, [TYPE_TEXT.get(t, t.lower().replace("_", " ")) for t in types],
                            taxonomy=taxonomy, top_k=1)
    return {t: r[0].path for t, r in zip(types, result.results, strict=True) if r}


async def build_ontology(ctx: ToolContext, texts: str | list[str] | None = None,
                         documents: list[dict[str, Any]] | None = None, labels: list[str] | None = None,
                         model: str | None = None, graph: str | None = None,
                         taxonomy: list[str] | dict[str, Any] | None = None) -> BuildOntologyResult:
    service = _service(ctx)
    docs = _documents(ctx, texts, documents)
    if graph is not None and not valid_id(graph):
        raise InvalidInput(f"invalid graph id {graph!r}: 1-64 letters, digits, '_', '-', '.'")
    graph_id = graph or uuid.uuid4().hex[:12]
    if taxonomy is not None:  # refused before the documents are parsed, not after
        check_taxonomy(taxonomy, ctx.limits)
        parse_taxonomy(taxonomy)
    model_id = model or DEFAULT_PARSE_MODEL
    types = wanted_types(labels)
    pieces = [(i, c.start, c.text) for i, (_, text) in enumerate(docs) for c in chunk_text(text, CHUNK_CHARS, overlap=0)]
    parsed: list[list[tuple[int, DocParse]]] = [[] for _ in docs]
    total = len(pieces) + 2  # + resolution + saving
    for b in range(0, len(pieces), PARSE_BATCH):
        batch = pieces[b:b + PARSE_BATCH]
        for (i, offset, _), p in zip(batch, await parse(ctx.engine, model_id, [t for *_, t in batch]), strict=True):
            parsed[i].append((offset, p))
        await ctx.report(b + len(batch), total, f"parsed {b + len(batch)}/{len(pieces)} chunks")
    records = []
    for (doc_id, text), parts in zip(docs, parsed, strict=True):
        doc = to_parsed(doc_id, text, parts)
        if types is not None:
            doc = ParsedDoc(doc.doc_id, doc.text, doc.sentences,
                            tuple(m for m in doc.mentions if m.label in types), doc.tokens)
        records.append(extract(doc))
    async with service.lock(graph_id):
        kg = await service.load(graph_id) if service.store.exists(graph_id) else KnowledgeGraph()
        replaced = kg.add(records)
        names = kg.surface_texts()
        vectors = {}
        if names:
            out = await embed_texts(ctx, ctx.engine.entry(ctx.defaults.embed_model).id, names)
            vectors = dict(zip(names, out.vectors.float().numpy(), strict=True))
        await ctx.report(len(pieces) + 1, total, f"resolving {len(names)} surface forms")
        if taxonomy is not None:
            kg.taxonomy = {}
            kg.rebuild(vectors)
            kg.taxonomy = await _taxonomy_paths(ctx, sorted({kg.graph.nodes[n]["type"] for n in kg.entity_ids()}),
                                                taxonomy)
        await asyncio.to_thread(kg.rebuild, vectors)
        try:
            await asyncio.to_thread(service.store.save, graph_id, kg)
        except GraphTooLarge as e:
            raise InputTooLong(str(e)) from None
        await ctx.report(total, total, "saved")
    nodes, edges = kg.summary_counts()
    classes = sorted(d["label"] if len(d.get("path", [])) < 2 else " > ".join(d["path"])
                     for _, d in kg.graph.nodes(data=True) if d["kind"] == "class")
    return BuildOntologyResult(graph=graph_id, resource=f"graph://{graph_id}", documents=len(kg.records),
                               added=len(records) - len(replaced), replaced=len(replaced), nodes=nodes, edges=edges,
                               classes=classes,
                               top_entities=[TopEntity(**t) for t in navigate.top_entities(kg)],
                               relation_types=navigate.relation_counts(kg))


def _resolve(kg: KnowledgeGraph, index: navigate.Index, graph_id: str, name: str) -> list[str]:
    ids = navigate.find(kg, index, name)
    if not ids:
        raise UnknownEntity(f"no entity {name!r} in graph {graph_id!r}: call graph_search to find its name")
    return ids


async def graph_neighbors(ctx: ToolContext, graph: str, entity: str, depth: int = 1, relation: str | None = None,
                          limit: int = 20) -> GraphNeighborsResult:
    kg = await _service(ctx).load(graph)
    ids = _resolve(kg, navigate.Index.of(kg), graph, entity)
    found, total = navigate.neighbors(kg, ids[0], min(depth, 3), relation, min(limit, MAX_RESULTS))
    return GraphNeighborsResult(graph=graph, entity=EntityCard(**navigate.entity_card(kg, ids[0])),
                                neighbors=found, total=total, other_matches=ids[1:6])  # type: ignore[arg-type]


async def graph_path(ctx: ToolContext, graph: str, source: str, target: str) -> GraphPathResult:
    kg = await _service(ctx).load(graph)
    index = navigate.Index.of(kg)
    a, b = _resolve(kg, index, graph, source)[0], _resolve(kg, index, graph, target)[0]
    hops = navigate.shortest_path(kg, a, b)
    return GraphPathResult(graph=graph, source=EntityCard(**navigate.entity_card(kg, a)),
                           target=EntityCard(**navigate.entity_card(kg, b)), found=hops is not None,
                           hops=hops or [])  # type: ignore[arg-type]


async def graph_subgraph(ctx: ToolContext, graph: str, entities: list[str], limit: int = 50) -> GraphSubgraphResult:
    if not entities:
        raise InvalidInput("entities is empty: name at least two entities")
    if len(entities) > MAX_RESULTS:
        raise InputTooLong(f"entities has {len(entities)} names; the limit is {MAX_RESULTS}")
    kg = await _service(ctx).load(graph)
    index = navigate.Index.of(kg)
    ids, unknown = [], []
    for name in entities:
        found = navigate.find(kg, index, name)
        if not found:
            unknown.append(name)
        elif found[0] not in ids:
            ids.append(found[0])
    nodes, edges, total = navigate.subgraph(kg, ids, min(limit, MAX_RESULTS))
    return GraphSubgraphResult(graph=graph, nodes=nodes, edges=edges, total_edges=total,  # type: ignore[arg-type]
                               unknown=unknown)


async def graph_search(ctx: ToolContext, graph: str, query: str, limit: int = 10) -> GraphSearchResult:
    if not query.strip():
        raise InvalidInput("query is empty: give a name, an alias or a description")
    service = _service(ctx)
    kg = await service.load(graph)
    limit = min(limit, MAX_RESULTS)
    hits = navigate.lexical_search(kg, navigate.Index.of(kg), query, limit)
    if not hits:
        hits = await _embedding_search(ctx, service, graph, kg, query, limit)
    matches = [SearchMatch(**navigate.entity_card(kg, n), score=round(s, 3), match=how) for n, s, how in hits]
    return GraphSearchResult(graph=graph, matches=matches)


async def _embedding_search(ctx: ToolContext, service: GraphService, graph: str, kg: KnowledgeGraph, query: str,
                            limit: int) -> list[tuple[str, float, str]]:
    model = ctx.engine.entry(ctx.defaults.embed_model).id
    cached = service._name_vectors.get(graph)
    if cached is None or cached[0] is not kg:  # a rebuilt or reloaded graph is a new object
        ids = kg.entity_ids()
        if not ids:
            return []
        out = await embed_texts(ctx, model, [kg.graph.nodes[n]["label"] for n in ids])
        cached = (kg, ids, out.vectors.float().numpy())
        service._name_vectors[graph] = cached
        while len(service._name_vectors) > 8:
            service._name_vectors.popitem(last=False)
    _, ids, matrix = cached
    q = (await ctx.engine.embed(model, [query])).vectors.float().numpy()[0]
    sims = matrix @ q / np.maximum(np.linalg.norm(matrix, axis=1) * np.linalg.norm(q), 1e-12)
    order = np.argsort(-sims)[:limit]
    return [(ids[i], float(sims[i]), "embedding") for i in order if sims[i] > 0.2]
