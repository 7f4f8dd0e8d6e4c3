"""The knowledge-graph tools: build_ontology and the navigation tools, over ontology/ (a pure library).

This layer runs the models: documents are chunked (tools.chunking), parsed by the spaCy pipeline
(entities + dependency parse, tools.parse), turned into ontology's input dataclasses, extracted, and the
surface forms embedded with the default embedding model for entity resolution; an optional taxonomy places
the entity types through `classify`. Only forms the graph has not seen are embedded (the store keeps vectors).
A GLiNER2 entity model given `relations` finds the entities and the relations of each chunk in one forward;
its relations are the typed edges (none are read off the parse, none renamed by embedding).
Graphs live in a database store (ontology.store) behind a `GraphService`: a build is one transaction, the
navigation tools read the bounded piece of the graph they need in one snapshot.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InputTooLong, InvalidInput, UnsupportedTask
from ontology.errors import UnknownEntity, UnknownGraph
from engine.gliner2_decoding import SpanValue
from engine.parse import DocParse
from engine.registry import Task
from ontology import navigate
from tools.chunking import chunk_text
from ontology.graph import DocRecord, KnowledgeGraph, extract
from ontology.relations import TYPED, FoundRelation, describe, map_relations
from ontology.inputs import Mention, ParsedDoc, Token
from ontology.store import BuildCancelled, GraphNotFound, GraphStore, GraphTooLarge, valid_id
from tools.classify import classify
from tools.context import ToolContext, as_texts
from tools.embed import embed_texts
from tools.entities import extract_entities
from tools.gliner2 import gliner2_entities_relations
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
GLINER2_PATTERN = "gliner2"  # the evidence's `pattern` of a relation GLiNER2 found
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
    """Graphs for the tools: the store (a database: builds are transactions, so builds of one graph from this
    process or another never lose each other's documents), and store calls run in worker threads."""

    store: GraphStore

    async def call(self, fn, *args, **kwargs):
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except GraphNotFound as e:
            known = ", ".join(i.id for i in self.store.list()[:10]) or "none yet"
            raise UnknownGraph(f"{e.args[0]}; known graphs: {known}. Build one with build_ontology") from None

    async def load(self, graph_id: str) -> KnowledgeGraph:
        return await self.call(self.store.load, graph_id)

    async def read(self, graph_id: str, fn, *args):
        """fn(reader, *args) in one snapshot of the graph, in a worker thread."""
        def run():
            with self.store.reader(graph_id) as reader:
                return fn(reader, *args)
        return await self.call(run)


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


@dataclass(frozen=True)
class Models:
    """A build's models by role."""

    parser: str
    entities: str | None = None  # None: the parser's own entities
    gliner2: bool = False  # the entity model is GLiNER2: given relations, it finds them too


async def _models(ctx: ToolContext, model: str | None, labels: list[str] | None) -> Models:
    """A spaCy pipeline parses and finds entities; a zero-shot (GLiNER, GLiNER2) or token-classification model
    finds the entities while spaCy's default pipeline parses."""
    if model is None:
        return Models(DEFAULT_PARSE_MODEL)
    info = await ctx.engine.info(ctx.engine.entry(model).id)
    if info.task is Task.PARSE:
        return Models(model)
    zero_shot = info.task in (Task.ZERO_SHOT_NER, Task.SCHEMA_EXTRACTION)
    if zero_shot and not labels:
        raise InvalidInput(f"model {model} is zero-shot: name the entity types as labels, e.g. ['person', "
                           "'company', 'city']; the graph's types are exactly those labels")
    if not zero_shot and info.task is not Task.TOKEN_CLASSIFICATION:
        raise UnsupportedTask(f"model {model} computes {info.task.value}: build_ontology takes a spaCy pipeline, a "
                              "zero-shot NER model (GLiNER or GLiNER2, with labels) or a token-classification NER "
                              "model")
    return Models(DEFAULT_PARSE_MODEL, model, info.task is Task.SCHEMA_EXTRACTION)


def _relation_labels(ctx: ToolContext, relations: list[str] | None) -> list[str] | None:
    if relations is None:
        return None
    labels = as_texts(relations, ctx.limits, "relations", max_items=ctx.limits.max_labels)
    if not all(x.strip() for x in labels):
        raise InvalidInput("relations must be non-empty strings, e.g. ['founded', 'works for', 'based in']")
    return labels


def _ends(v: SpanValue) -> tuple[int, int]:
    return v.start or 0, v.end or 0


async def _find(ctx: ToolContext, models: Models, texts: list[str], labels: list[str] | None,
                relations: list[str] | None) -> list[tuple[list[Mention], list[FoundRelation]]]:
    """Per chunk, the entity model's mentions and, from GLiNER2 given relations, its relations (one forward
    finds both), in the chunk's offsets. A relation's confidence is its weaker end's score."""
    assert models.entities is not None
    if models.gliner2 and relations is not None:
        assert labels is not None  # _models refused a zero-shot model without labels
        out = await gliner2_entities_relations(ctx, texts, models.entities, labels, relations)
        return [([Mention(e.start, e.end, e.text, e.label, e.score) for e in r.entities],
                 [FoundRelation(x.relation, _ends(x.head), _ends(x.tail), round(min(x.head.score, x.tail.score), 4),
                                GLINER2_PATTERN) for x in r.relations]) for r in out]
    result = await extract_entities(ctx, texts, model=models.entities, labels=labels)
    return [([Mention(e.start, e.end, e.text, e.label, e.score) for e in ents], []) for ents in result.entities]


def _shifted(found: Sequence[tuple[int, list[Mention], list[FoundRelation]]]
             ) -> tuple[tuple[Mention, ...], list[FoundRelation]]:
    """A document's chunks' mentions and relations, in the document's offsets."""
    mentions = tuple(Mention(m.start + off, m.end + off, m.text, m.label, m.score)
                     for off, ms, _ in found for m in ms)
    relations = [FoundRelation(r.relation, (r.head[0] + off, r.head[1] + off), (r.tail[0] + off, r.tail[1] + off),
                               r.confidence, r.pattern) for off, _, rs in found for r in rs]
    return mentions, relations


async def build_ontology(ctx: ToolContext, texts: str | list[str] | None = None,
                         documents: list[dict[str, Any]] | None = None, labels: list[str] | None = None,
                         model: str | None = None, graph: str | None = None,
                         taxonomy: list[str] | dict[str, Any] | None = None,
                         relations: list[str] | None = None) -> BuildOntologyResult:
    service = _service(ctx)
    docs = _documents(ctx, texts, documents)
    if graph is not None and not valid_id(graph):
        raise InvalidInput(f"invalid graph id {graph!r}: 1-64 letters, digits, '_', '-', '.'")
    graph_id = graph or uuid.uuid4().hex[:12]
    if taxonomy is not None:  # refused before the documents are parsed, not after
        check_taxonomy(taxonomy, ctx.limits)
        parse_taxonomy(taxonomy)
    relation_labels = _relation_labels(ctx, relations)
    models = await _models(ctx, model, labels)
    entity_model = models.entities
    by_model = models.gliner2 and relation_labels is not None  # GLiNER2's relations replace the parse's
    # spaCy's entities are filtered to the caller's types; another entity model's types are its labels
    types = wanted_types(labels) if entity_model is None else None
    allowed = types if entity_model is None else set()  # no made-up mentions of types the caller did not ask
    pieces = [(i, c.start, c.text) for i, (_, text) in enumerate(docs) for c in chunk_text(text, CHUNK_CHARS, overlap=0)]
    parsed: list[list[tuple[int, DocParse]]] = [[] for _ in docs]
    found: list[list[tuple[int, list[Mention], list[FoundRelation]]]] = [[] for _ in docs]
    total = len(pieces) + 2  # + resolution + saving
    for b in range(0, len(pieces), PARSE_BATCH):
        batch = pieces[b:b + PARSE_BATCH]
        chunk_texts = [t for *_, t in batch]
        for (i, offset, _), p in zip(batch, await parse(ctx.engine, models.parser, chunk_texts), strict=True):
            parsed[i].append((offset, p))
        if entity_model is not None:
            per_chunk = await _find(ctx, models, chunk_texts, labels, relation_labels)
            for (i, offset, _), (ms, rs) in zip(batch, per_chunk, strict=True):
                found[i].append((offset, ms, rs))
        await ctx.report(b + len(batch), total, f"parsed {b + len(batch)}/{len(pieces)} chunks")
    records = []
    for k, ((doc_id, text), parts) in enumerate(zip(docs, parsed, strict=True)):
        doc = to_parsed(doc_id, text, parts)
        found_relations = None
        if entity_model is not None:
            mentions, found_relations = _shifted(found[k])
            doc = ParsedDoc(doc.doc_id, doc.text, doc.sentences, mentions, doc.tokens)
        elif types is not None:
            doc = ParsedDoc(doc.doc_id, doc.text, doc.sentences,
                            tuple(m for m in doc.mentions if m.label in types), doc.tokens)
        records.append(extract(doc, allowed=allowed, found=found_relations if by_model else None))
    if relation_labels is not None and not by_model:
        records = await _map_relations(ctx, records, relation_labels)
    names = sorted({m[1] for r in records for m in r.mentions})
    missing = await service.call(service.store.missing_vectors, graph_id, names)
    vectors = {}
    if missing:
        out = await embed_texts(ctx, ctx.engine.entry(ctx.defaults.embed_model).id, missing)
        vectors = dict(zip(missing, out.vectors.float().numpy(), strict=True))
    await ctx.report(len(pieces) + 1, total, f"resolving {len(names)} surface forms")
    paths = None
    if taxonomy is not None:  # every type the graph may hold after this build (the store keeps only those used)
        known = set()
        if service.store.exists(graph_id):
            known = {t for t, _ in (await service.read(graph_id, lambda r: r.entity_rows())).values()}
        paths = await _taxonomy_paths(ctx, sorted(known | {m[0] for r in records for m in r.mentions}), taxonomy)
    added, replaced = await _commit(service, graph_id, records, vectors, paths)
    await ctx.report(total, total, "saved")
    s = await service.read(graph_id, navigate.summary)
    return BuildOntologyResult(graph=graph_id, resource=f"graph://{graph_id}", documents=s["documents"],
                               added=added, replaced=replaced, nodes=s["nodes"], edges=s["edges"],
                               classes=s["classes"], top_entities=[TopEntity(**t) for t in s["top_entities"]],
                               relation_types=s["relation_types"])


async def _map_relations(ctx: ToolContext, records: list[DocRecord], labels: list[str]) -> list[DocRecord]:
    """Typed edges (the parse's) renamed to the caller's relation labels they match
    (ontology.relations.map_relations, by the embed model); typed edges matching no label are dropped;
    co-occurrence stays."""
    names = sorted({r[4] for rec in records for r in rec.relations if r[5] == TYPED})
    if not names:
        return records
    model = ctx.engine.entry(ctx.defaults.embed_model).id
    phrases = [describe(n) for n in names]
    out = await embed_texts(ctx, model, labels + [p for ps in phrases for p in ps])
    vecs = out.vectors.float().numpy()
    per_name, at = [], len(labels)
    for ps in phrases:
        per_name.append(vecs[at:at + len(ps)])
        at += len(ps)
    mapping = map_relations(labels, names, vecs[:len(labels)], per_name)
    mapped = []
    for rec in records:
        rows = [r if r[5] != TYPED else [*r[:4], mapping[r[4]], *r[5:]] for r in rec.relations
                if r[5] != TYPED or r[4] in mapping]
        mapped.append(DocRecord(rec.doc_id, rec.mentions, rec.sentences, rows))
    return mapped


async def _commit(service: GraphService, graph_id: str, records: list, vectors: dict,
                  taxonomy: dict[str, list[str]] | None) -> tuple[int, int]:
    """The build's one transaction, in a worker thread. A cancelled call aborts it before its commit (the
    thread checks the flag at its checkpoint; the call waits for the rollback, so when it returns cancelled
    the graph is as it was)."""
    cancelled = threading.Event()

    def checkpoint() -> None:
        if cancelled.is_set():
            raise BuildCancelled("build cancelled before its commit")

    task = asyncio.ensure_future(asyncio.to_thread(service.store.add_documents, graph_id, records, vectors, taxonomy,
                                                   checkpoint))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancelled.set()
        try:
            await task
        except BaseException:  # noqa: BLE001 - the rollback's BuildCancelled, or whatever ended it
            pass
        raise
    except GraphTooLarge as e:
        raise InputTooLong(str(e)) from None


def _first(reader, graph_id: str, name: str) -> str:
    ids = navigate.stored_find(reader, name)
    if not ids:
        raise UnknownEntity(f"no entity {name!r} in graph {graph_id!r}: call graph_search to find its name")
    return ids[0]


async def graph_neighbors(ctx: ToolContext, graph: str, entity: str, depth: int = 1, relation: str | None = None,
                          limit: int = 20) -> GraphNeighborsResult:
    def run(reader):
        ids = navigate.stored_find(reader, entity)
        if not ids:
            raise UnknownEntity(f"no entity {entity!r} in graph {graph!r}: call graph_search to find its name")
        kg = navigate.bounded(reader, ids[:1], min(depth, 3), relation)
        found, total = navigate.neighbors(kg, ids[0], min(depth, 3), relation, min(limit, MAX_RESULTS))
        return GraphNeighborsResult(graph=graph, entity=EntityCard(**navigate.entity_card(kg, ids[0])),
                                    neighbors=found, total=total, other_matches=ids[1:6])  # type: ignore[arg-type]

    return await _service(ctx).read(graph, run)


async def graph_path(ctx: ToolContext, graph: str, source: str, target: str) -> GraphPathResult:
    def run(reader):
        a, b = _first(reader, graph, source), _first(reader, graph, target)
        kg = navigate.bounded(reader, [a], 6, stop=b)
        if b not in kg.graph:
            kg.graph.add_node(b, **reader.nodes([b])[b])
        hops = navigate.shortest_path(kg, a, b)
        return GraphPathResult(graph=graph, source=EntityCard(**navigate.entity_card(kg, a)),
                               target=EntityCard(**navigate.entity_card(kg, b)), found=hops is not None,
                               hops=hops or [])  # type: ignore[arg-type]

    return await _service(ctx).read(graph, run)


async def graph_subgraph(ctx: ToolContext, graph: str, entities: list[str], limit: int = 50) -> GraphSubgraphResult:
    if not entities:
        raise InvalidInput("entities is empty: name at least two entities")
    if len(entities) > MAX_RESULTS:
        raise InputTooLong(f"entities has {len(entities)} names; the limit is {MAX_RESULTS}")

    def run(reader):
        ids, unknown = [], []
        for name in entities:
            found = navigate.stored_find(reader, name)
            if not found:
                unknown.append(name)
            elif found[0] not in ids:
                ids.append(found[0])
        kg = navigate.among(reader, ids)
        nodes, edges, total = navigate.subgraph(kg, ids, min(limit, MAX_RESULTS))
        return GraphSubgraphResult(graph=graph, nodes=nodes, edges=edges, total_edges=total,  # type: ignore[arg-type]
                                   unknown=unknown)

    return await _service(ctx).read(graph, run)


async def graph_search(ctx: ToolContext, graph: str, query: str, limit: int = 10) -> GraphSearchResult:
    if not query.strip():
        raise InvalidInput("query is empty: give a name, an alias or a description")
    service = _service(ctx)
    limit = min(limit, MAX_RESULTS)
    hits, nodes = await service.read(graph, navigate.stored_search, query, limit)
    if not hits:
        hits, nodes = await _embedding_search(ctx, service, graph, query, limit)

    def card(n: str) -> dict[str, Any]:
        d = nodes[n]
        return {"id": n, "name": d["label"], "type": d["type"], "aliases": d["aliases"][:5],
                "mentions": d["mentions"], "documents": d["documents"]}

    matches = [SearchMatch(**card(n), score=round(s, 3), match=how) for n, s, how in hits if n in nodes]
    return GraphSearchResult(graph=graph, matches=matches)


async def _embedding_search(ctx: ToolContext, service: GraphService, graph: str, query: str,
                            limit: int) -> tuple[list[tuple[str, float, str]], dict]:
    """Nearest stored surface-form vectors (each form was embedded once, when its document was added)."""
    model = ctx.engine.entry(ctx.defaults.embed_model).id
    q = (await ctx.engine.embed(model, [query])).vectors.float().numpy()[0]
    q = q / max(float(np.linalg.norm(q)), 1e-12)

    def run(reader):
        stored = reader.vectors()
        if stored is None:
            return [], {}
        ids, matrix = stored
        sims = matrix @ q
        best: dict[str, float] = {}
        for i in np.argsort(-sims).tolist():
            if sims[i] <= 0.2 or len(best) >= limit:
                break
            best.setdefault(ids[i], float(sims[i]))
        hits = [(n, s, "embedding") for n, s in best.items()]
        return hits, reader.nodes(best)

    return await service.read(graph, run)
