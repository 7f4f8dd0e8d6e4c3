"""The knowledge graph: a networkx MultiDiGraph derived from per-document extraction records.

What is kept is each document's record (its entity mentions and its relations between surface forms); the
graph is derived from all records at once: surface forms are resolved into entities (ontology.resolution),
relations are mapped onto those entities and aggregated. Adding documents adds records and re-derives, so an
incremental build equals a one-shot build of the same documents, and resolution can merge a new alias into an
entity first seen long ago.

Node attributes
  entity nodes (id "TYPE:normalised_name", e.g. "ORG:international_business_machines"):
    kind="entity", label (the canonical name), type, aliases (list of other surface forms), mentions (int),
    documents (int: how many documents mention it), doc_ids (up to 20, sorted), evidence (up to 5 mentions:
    {doc, sentence, start, end}; start/end are the mention's character offsets in that document)
  class nodes (id "class:TYPE", or "class:A/B" for taxonomy categories): kind="class", label, and for a
    category its path (list of names from the root)
Edge attributes (key = relation)
  relation (the key again: a normalised relation such as "acquired", "works_for", "role:mayor" (see
  ontology.relations), or "co_occurs_with", "instance_of", "subclass_of"), kind ("typed", "co-occurrence",
  "ontology"), weight (how many distinct sentences state it), evidence (up to 20 of them: {doc, sentence,
  sentence_start, sentence_end, source_span, target_span} and for typed relations pattern (the construction,
  or "gliner2" for a relation GLiNER2 found) and confidence)
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from ontology.inputs import Mention, ParsedDoc
from ontology.relations import (
    CO_OCCURRENCE,
    TYPED,
    CoOccurrence,
    FoundRelation,
    Relation,
    _evidence,
    co_occurrences,
    found_facts,
    sentence_of,
    typed_facts,
)
from ontology.resolution import DEFAULT_THRESHOLD, Entity, Form, _display, family, resolve

# Types that are values rather than things: spaCy finds them, a graph of them is noise.
VALUE_TYPES = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})
MAX_EDGE_EVIDENCE = 20
MAX_NODE_EVIDENCE = 5
MAX_NODE_DOC_IDS = 20
INSTANCE_OF = "instance_of"
SUBCLASS_OF = "subclass_of"
FORMAT_VERSION = 1


def _surface(label: str, text: str) -> str:
    return f"{label}\x1f{text}"


@dataclass
class DocRecord:
    """One document's extraction, in surface forms (resolution happens over all records)."""

    doc_id: str
    mentions: list[list[Any]]  # [label, text, start, end, sentence index into `sentences`]
    sentences: list[list[Any]]  # [start, end, text] of the sentences that hold a mention
    relations: list[list[Any]]  # [src label, src text, tgt label, tgt text, relation, kind, evidence dict]

    def as_json(self) -> dict:
        return {"doc": self.doc_id, "mentions": self.mentions, "sentences": self.sentences,
                "relations": self.relations}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DocRecord:
        return cls(data["doc"], data["mentions"], data["sentences"], data["relations"])


def _trim(m: Mention, doc: ParsedDoc) -> Mention:
    """A mention that swallowed the verb after it ("Sundar Pichai leads") ends before that verb."""
    if not doc.tokens:
        return m
    starts = [t.start for t in doc.tokens]
    i = bisect.bisect_right(starts, m.end - 1) - 1
    end = m.end
    while i >= 0 and doc.tokens[i].start > m.start and doc.tokens[i].pos in ("VERB", "AUX"):
        end = doc.tokens[i - 1].end
        i -= 1
    if end == m.end:
        return m
    return Mention(m.start, end, doc.text[m.start:end], m.label, m.score)


def extract(doc: ParsedDoc, skip_types: frozenset[str] = VALUE_TYPES, allowed: set[str] | None = None,
            co_occurrence: CoOccurrence = CoOccurrence.NEIGHBOURS,
            found: Sequence[FoundRelation] | None = None) -> DocRecord:
    """A parsed document -> its record: kept mentions, the sentences they sit in, and its relations (typed
    relations from the parse, co-occurrence within sentences as `co_occurrence` says). `allowed`: the only entity
    types wanted (a caller's labels); a relation argument the entity model missed becomes a mention only if its
    type is one. `found`: typed relations another model found (GLiNER2), used instead of the parse's, between
    the kept mentions (ontology.relations.found_facts)."""
    mentions = [m for m in (_trim(m, doc) for m in doc.mentions) if m.label not in skip_types and m.text.strip()]
    kept = ParsedDoc(doc.doc_id, doc.text, doc.sentences, tuple(mentions), doc.tokens)
    facts, made = typed_facts(kept) if found is None else (found_facts(kept, found), [])
    made = [m for m in made if allowed is None or m.label in allowed]
    if made:
        mentions = sorted([*mentions, *made], key=lambda m: (m.start, m.end))
        kept = ParsedDoc(doc.doc_id, doc.text, doc.sentences, tuple(mentions), doc.tokens)
    surface: dict[Mention, str] = {m: _surface(m.label, m.text) for m in mentions}
    sent_index: dict[int, int] = {}
    sentences: list[list[Any]] = []
    rows: list[list[Any]] = []
    for m in mentions:
        s = sentence_of(kept, m.start)
        if s not in sent_index:
            sent_index[s] = len(sentences)
            a, b = doc.sentences[s] if doc.sentences else (0, len(doc.text))
            sentences.append([a, b, doc.text[a:b].strip()])
        rows.append([m.label, m.text, m.start, m.end, sent_index[s]])
    typed = []
    for f in facts:
        a, b = surface.get(f.source), surface.get(f.target)
        if a is not None and b is not None and a != b:
            typed.append(Relation(a, b, f.relation, TYPED, _evidence(kept, f.sentence, f.source, f.target, f.pattern,
                                                                      f.confidence)))
    relations = []
    for r in co_occurrences(kept, surface, co_occurrence) + typed:
        sl, st = r.source.split("\x1f", 1)
        tl, tt = r.target.split("\x1f", 1)
        relations.append([sl, st, tl, tt, r.relation, r.kind, r.evidence.as_dict()])
    return DocRecord(doc.doc_id, rows, sentences, relations)


def add_edges(g: nx.MultiDiGraph, grouped: Mapping[tuple[str, str, str], Mapping[tuple, dict]],
              kinds: Mapping[tuple[str, str, str], str]) -> None:
    """Edges from relation evidence grouped by (source id, target id, relation) and by (doc, sentence start)."""
    for key in sorted(grouped):
        a, b, rel = key
        evs = [grouped[key][k] for k in sorted(grouped[key])]
        g.add_edge(a, b, key=rel, relation=rel, kind=kinds[key], weight=len(evs), evidence=evs[:MAX_EDGE_EVIDENCE])


def group_relation(grouped: dict, kinds: dict, a: str, b: str, rel: str, kind: str, ev: dict) -> None:
    """One relation row (already mapped onto entity ids) into the edge groups: self-loops dropped,
    co-occurrence stored once per pair from the smaller id, one count per sentence."""
    if a == b:
        return
    if kind == CO_OCCURRENCE and a > b:
        a, b = b, a
        ev = {**ev, "source_span": ev["target_span"], "target_span": ev["source_span"]}
    key = (a, b, rel)
    kinds[key] = kind
    grouped.setdefault(key, {}).setdefault((ev["doc"], ev["sentence_start"]), ev)


@dataclass
class KnowledgeGraph:
    records: dict[str, DocRecord] = field(default_factory=dict)
    taxonomy: dict[str, list[str]] = field(default_factory=dict)  # entity type -> category path
    threshold: float = DEFAULT_THRESHOLD
    graph: nx.MultiDiGraph = field(default_factory=nx.MultiDiGraph)
    # what readers derive from `graph` (navigate.Index), tagged with the graph object it was derived from
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # --- building --------------------------------------------------------------------------------

    def add(self, records: Iterable[DocRecord]) -> list[str]:
        """Add (or replace, by doc id) records; returns the ids that replaced earlier ones. Call `rebuild`."""
        replaced = []
        for r in records:
            if r.doc_id in self.records:
                replaced.append(r.doc_id)
            self.records[r.doc_id] = r
        return replaced

    def surface_texts(self) -> list[str]:
        """Every distinct surface form: what the caller embeds for resolution."""
        return sorted({m[1] for r in self.records.values() for m in r.mentions})

    def forms(self) -> list[Form]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for r in self.records.values():
            for m in r.mentions:
                counts[(m[0], m[1])] += 1
        return [Form(text, label, n) for (label, text), n in sorted(counts.items())]

    def rebuild(self, vectors: Mapping[str, Sequence[float]] | None = None,
                resolved: Mapping[tuple[str, str], Entity] | None = None) -> None:
        """Derive the graph from all records (deterministic: sorted everywhere). `resolved`: a resolution
        already made ((label, text) -> entity, e.g. the store's); else the forms are resolved here."""
        if resolved is None:
            resolved = resolve(self.forms(), vectors, self.threshold)
        g = nx.MultiDiGraph()
        g.graph.update({"format": "sie-mcp-kg", "version": FORMAT_VERSION, "documents": len(self.records)})
        entities: dict[str, Entity] = {e.id: e for e in resolved.values()}
        node_docs: dict[str, set[str]] = defaultdict(set)
        node_evidence: dict[str, list[dict]] = defaultdict(list)
        for doc_id in sorted(self.records):
            r = self.records[doc_id]
            for label, text, start, end, s in r.mentions:
                eid = resolved[(label, text)].id
                node_docs[eid].add(doc_id)
                if len(node_evidence[eid]) < MAX_NODE_EVIDENCE:
                    node_evidence[eid].append({"doc": doc_id, "sentence": r.sentences[s][2], "start": start,
                                               "end": end})
        for eid in sorted(entities):
            e = entities[eid]
            docs = sorted(node_docs[eid])
            g.add_node(eid, kind="entity", label=e.name, type=e.type, aliases=e.aliases, mentions=e.mentions,
                       documents=len(docs), doc_ids=docs[:MAX_NODE_DOC_IDS], evidence=node_evidence[eid])
        self._add_ontology(g, sorted({e.type for e in entities.values()}), sorted(entities))
        grouped: dict[tuple[str, str, str], dict[tuple, dict]] = {}
        kinds: dict[tuple[str, str, str], str] = {}
        for doc_id in sorted(self.records):
            for sl, st, tl, tt, rel, kind, ev in self.records[doc_id].relations:
                group_relation(grouped, kinds, resolved[(sl, st)].id, resolved[(tl, tt)].id, rel, kind, ev)
        add_edges(g, grouped, kinds)
        self.graph = g

    def assignment(self) -> dict[tuple[str, str], str]:
        """(label, surface text) -> entity id, as the derived graph has it (how an old JSON graph's merges are
        kept when it is imported into the database store: its vectors were never saved)."""
        by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)  # display name -> [(family, id)]
        for n in self.entity_ids():
            d = self.graph.nodes[n]
            for name in {d["label"], *d["aliases"]}:
                by_name[name].append((family(d["type"]), n))
        out = {}
        for label, text in {(m[0], m[1]) for r in self.records.values() for m in r.mentions}:
            found = by_name.get(_display(text), [])
            same = [n for fam, n in found if fam == family(label)] or [n for _, n in found]
            if same:
                out[(label, text)] = sorted(same)[0]
        return out

    def _add_ontology(self, g: nx.MultiDiGraph, types: list[str], entity_ids: list[str]) -> None:
        """Entity types become classes (instances linked to them); classes go under taxonomy categories."""
        for t in types:
            g.add_node(f"class:{t}", kind="class", label=t, path=[t])
        for eid in entity_ids:
            g.add_edge(eid, f"class:{g.nodes[eid]['type']}", key=INSTANCE_OF, relation=INSTANCE_OF,
                       kind="ontology", weight=1, evidence=[])
        for t in types:
            path = self.taxonomy.get(t)
            if not path:
                continue
            child = f"class:{t}"
            for depth in range(len(path), 0, -1):
                cid = "class:" + "/".join(path[:depth])
                if cid not in g:
                    g.add_node(cid, kind="class", label=path[depth - 1], path=list(path[:depth]))
                if not g.has_edge(child, cid, key=SUBCLASS_OF):
                    g.add_edge(child, cid, key=SUBCLASS_OF, relation=SUBCLASS_OF, kind="ontology", weight=1,
                               evidence=[])
                child = cid

    # --- reading ---------------------------------------------------------------------------------

    def entity_ids(self) -> list[str]:
        return [n for n, d in self.graph.nodes(data=True) if d.get("kind") == "entity"]

    def summary_counts(self) -> tuple[int, int]:
        """(entity nodes, relation edges), the ontology layer not counted."""
        entities = len(self.entity_ids())
        relations = sum(1 for *_, d in self.graph.edges(keys=True, data=True) if d.get("kind") != "ontology")
        return entities, relations

    # --- (de)serialisation: node-link JSON plus the records ------------------------------------------

    def to_json(self) -> dict:
        data = nx.node_link_data(self.graph, edges="edges")
        data["sie_kg"] = {"records": [self.records[k].as_json() for k in sorted(self.records)],
                          "taxonomy": self.taxonomy, "threshold": self.threshold}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KnowledgeGraph:
        if data.get("graph", {}).get("format") != "sie-mcp-kg":
            raise ValueError("not a sie-mcp knowledge graph (node-link JSON with graph.format = 'sie-mcp-kg')")
        extra = data.get("sie_kg", {})
        graph = nx.node_link_graph({k: v for k, v in data.items() if k != "sie_kg"}, directed=True,
                                   multigraph=True, edges="edges")
        return cls(records={r["doc"]: DocRecord.from_json(r) for r in extra.get("records", [])},
                   taxonomy=dict(extra.get("taxonomy", {})), threshold=extra.get("threshold", DEFAULT_THRESHOLD),
                   graph=graph)
