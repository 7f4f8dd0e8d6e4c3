"""Reading a graph the way an agent navigates it: find an entity, its neighbourhood, a path between two,
the edges among a few. Every answer is bounded (a limit, evidence cut to a snippet) so a call never loads
the graph into an agent's context. Entities are named by id, canonical name or any alias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from ontology.graph import KnowledgeGraph, add_edges
from ontology.relations import CO_OCCURS
from ontology.resolution import normalize
from ontology.store import GraphReader

SNIPPET_CHARS = 200


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


@dataclass
class Index:
    """Normalised name or alias -> entity ids (several when two types share a name), and the undirected
    relation view paths are searched on; built once per graph object (a rebuilt or reloaded graph is a
    new object, so it never goes stale)."""

    names: dict[str, list[str]]
    _view: nx.Graph | None = None

    @classmethod
    def of(cls, kg: KnowledgeGraph) -> Index:
        cached = kg.derived.get("index")
        if cached is not None and cached[0] is kg.graph:
            return cached[1]
        index = cls._build(kg)
        kg.derived["index"] = (kg.graph, index)
        return index

    @classmethod
    def _build(cls, kg: KnowledgeGraph) -> Index:
        names: dict[str, list[str]] = {}
        for n in kg.entity_ids():
            d = kg.graph.nodes[n]
            for name in {d["label"], *d["aliases"]}:
                ids = names.setdefault(normalize(name), [])
                if n not in ids:
                    ids.append(n)
        return cls(names)

    def view(self, kg: KnowledgeGraph) -> nx.Graph:
        """Entities joined by their strongest relation (typed over co-occurrence, then by weight)."""
        if self._view is None:
            view = nx.Graph()
            for u, v, k, d in kg.graph.edges(keys=True, data=True):
                if d["kind"] == "ontology":
                    continue
                if not view.has_edge(u, v) or (k != CO_OCCURS, d["weight"]) > view.edges[u, v]["rank"]:
                    view.add_edge(u, v, rank=(k != CO_OCCURS, d["weight"]), edge=_edge_view(kg, u, v, k, d))
            self._view = view
        return self._view


def find(kg: KnowledgeGraph, index: Index, name: str) -> list[str]:
    """Entity ids a name refers to: an exact id, else a normalised name or alias; most mentioned first."""
    if name in kg.graph and kg.graph.nodes[name].get("kind") == "entity":
        return [name]
    ids = index.names.get(normalize(name), [])
    return sorted(ids, key=lambda n: (-kg.graph.nodes[n]["mentions"], n))


def lexical_search(kg: KnowledgeGraph, index: Index, query: str, limit: int) -> list[tuple[str, float, str]]:
    """(entity id, score, how) by name: exact name/alias 1.0, all query words in a name 0.8, some 0.5 x share."""
    q = normalize(query)
    words = set(q.split())
    if not words:
        return []
    scores: dict[str, tuple[float, str]] = {}
    for key, ids in index.names.items():
        if key == q:
            score, how = 1.0, "name"
        else:
            kw = set(key.split())
            shared = len(words & kw)
            if not shared:
                continue
            score, how = (0.8, "words") if words <= kw else (0.5 * shared / len(words | kw), "partial")
        for n in ids:
            if score > scores.get(n, (0.0, ""))[0]:
                scores[n] = (score, how)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1][0], -kg.graph.nodes[kv[0]]["mentions"], kv[0]))
    return [(n, s, how) for n, (s, how) in ranked[:limit]]


def entity_card(kg: KnowledgeGraph, n: str, aliases: int = 5) -> dict[str, Any]:
    d = kg.graph.nodes[n]
    return {"id": n, "name": d["label"], "type": d["type"], "aliases": d["aliases"][:aliases],
            "mentions": d["mentions"], "documents": d["documents"]}


def _edge_view(kg: KnowledgeGraph, a: str, b: str, key: str, d: dict) -> dict[str, Any]:
    ev = d["evidence"][0] if d["evidence"] else None
    return {"source": a, "target": b, "relation": key, "weight": d["weight"],
            "evidence": None if ev is None else {"doc": ev["doc"], "sentence": snippet(ev["sentence"])}}


def _relation_edges(kg: KnowledgeGraph, n: str, relation: str | None):
    """(neighbour, source, target, key, data) over both directions, ontology edges excluded."""
    g = kg.graph
    for _, m, k, d in g.out_edges(n, keys=True, data=True):
        if d["kind"] != "ontology" and (relation is None or k == relation):
            yield m, n, m, k, d
    for m, _, k, d in g.in_edges(n, keys=True, data=True):
        if d["kind"] != "ontology" and (relation is None or k == relation):
            yield m, m, n, k, d


def neighbors(kg: KnowledgeGraph, n: str, depth: int = 1, relation: str | None = None,
              limit: int = 20) -> tuple[list[dict[str, Any]], int]:
    """Entities within `depth` hops, nearest first, then by edge weight; returns (top `limit`, total found).
    Edge views (evidence snippets) are made for the returned ones only."""
    seen = {n: 0}
    found: list[tuple[int, float, str, tuple]] = []
    frontier = [n]
    for hops in range(1, depth + 1):
        best: dict[str, tuple] = {}
        for cur in frontier:
            for m, a, b, k, d in _relation_edges(kg, cur, relation):
                if m in seen:
                    continue
                rank = (k != CO_OCCURS, d["weight"])  # a typed relation over co-occurrence, then heavier
                if m not in best or rank > best[m][0]:
                    best[m] = (rank, (a, b, k, d))
        for m, (rank, edge) in best.items():
            seen[m] = hops
            found.append((hops, -rank[1] - 1e6 * rank[0], m, edge))
        frontier = sorted(best)
    found.sort(key=lambda t: (t[0], t[1], t[2]))
    out = [{**entity_card(kg, m, aliases=3), "hops": hops, "via": _edge_view(kg, *edge)}
           for hops, _, m, edge in found[:limit]]
    return out, len(found)


def shortest_path(kg: KnowledgeGraph, a: str, b: str, max_hops: int = 6) -> list[dict[str, Any]] | None:
    """The hops of a shortest path between two entities (any direction, ontology edges excluded)."""
    view = Index.of(kg).view(kg)
    if a not in view or b not in view:
        return None
    try:
        nodes = nx.shortest_path(view, a, b)
    except nx.NetworkXNoPath:
        return None
    if len(nodes) - 1 > max_hops:
        return None
    return [{"from_name": kg.graph.nodes[u]["label"], "to_name": kg.graph.nodes[v]["label"],
             **view.edges[u, v]["edge"]} for u, v in zip(nodes, nodes[1:], strict=False)]


def subgraph(kg: KnowledgeGraph, ids: list[str], limit: int = 50) -> tuple[list[dict], list[dict], int]:
    """The relation edges among `ids` (heaviest first, top `limit`); returns (nodes, edges, total edges)."""
    wanted = set(ids)
    edges = [_edge_view(kg, u, v, k, d) for u, v, k, d in kg.graph.subgraph(wanted).edges(keys=True, data=True)
             if d["kind"] != "ontology"]
    edges.sort(key=lambda e: (-e["weight"], e["source"], e["target"], e["relation"]))
    return [entity_card(kg, n, aliases=3) for n in ids], edges[:limit], len(edges)


def top_entities(kg: KnowledgeGraph, k: int = 10) -> list[dict[str, Any]]:
    g = kg.graph
    degree = {n: sum(1 for *_, d in g.in_edges(n, data=True) if d["kind"] != "ontology")
              + sum(1 for *_, d in g.out_edges(n, data=True) if d["kind"] != "ontology") for n in kg.entity_ids()}
    ranked = sorted(degree, key=lambda n: (-degree[n], -g.nodes[n]["mentions"], n))[:k]
    return [{"name": g.nodes[n]["label"], "type": g.nodes[n]["type"], "degree": degree[n]} for n in ranked]


def relation_counts(kg: KnowledgeGraph, k: int = 15) -> dict[str, int]:
    counts: dict[str, int] = {}
    for *_, key, d in kg.graph.edges(keys=True, data=True):
        if d["kind"] != "ontology":
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k])


# --- reading from the store: networkx on the bounded subgraph a call needs ------------------------------

MAX_BALL_NODES = 5000  # a path or neighbourhood search stops growing past this many entities


def bounded(reader: GraphReader, seeds: list[str], depth: int, relation: str | None = None,
            stop: str | None = None) -> KnowledgeGraph:
    """The entities within `depth` hops of `seeds` and the relation edges among them, as a KnowledgeGraph
    (only what the call needs is read); with `stop`, growing ends once it is reached."""
    grouped: dict[tuple[str, str, str], dict[tuple, dict]] = {}
    kinds: dict[tuple[str, str, str], str] = {}
    seen, frontier = set(seeds), set(seeds)
    for _ in range(depth):
        if not frontier:
            break
        g, k = reader.edges(frontier, relation)
        for key, evs in g.items():
            grouped.setdefault(key, {}).update(evs)
        kinds.update(k)
        reached = {x for a, b, _ in g for x in (a, b)} - seen
        seen |= reached
        frontier = reached
        if len(seen) > MAX_BALL_NODES or (stop is not None and stop in seen):
            break
    return _as_graph(reader, seen, grouped, kinds)


def _as_graph(reader: GraphReader, ids: set[str], grouped: dict, kinds: dict) -> KnowledgeGraph:
    g = nx.MultiDiGraph()
    for n, d in sorted(reader.nodes(ids).items()):
        g.add_node(n, **d)
    add_edges(g, {k: v for k, v in grouped.items() if k[0] in g and k[1] in g}, kinds)
    return KnowledgeGraph(graph=g)


def among(reader: GraphReader, ids: list[str]) -> KnowledgeGraph:
    grouped, kinds = reader.edges(ids, among=True)
    return _as_graph(reader, set(ids), grouped, kinds)


def stored_find(reader: GraphReader, name: str) -> list[str]:
    """Entity ids a name refers to (an exact id, else a normalised name or alias); most mentioned first."""
    names = reader.names()
    ids = set(names.get(normalize(name), []))
    if reader.nodes([name]):
        return [name]
    nodes = reader.nodes(ids)
    return sorted(nodes, key=lambda n: (-nodes[n]["mentions"], n))


def stored_search(reader: GraphReader, query: str, limit: int) -> tuple[list[tuple[str, float, str]], dict]:
    """lexical_search over the stored names; returns (hits, node attributes of the hits)."""
    kg = KnowledgeGraph()
    index = Index(reader.names())
    q = normalize(query)
    words = set(q.split())
    candidates = {n for key, ids in index.names.items() if words & set(key.split()) for n in ids}
    nodes = reader.nodes(candidates)
    for n, d in nodes.items():
        kg.graph.add_node(n, **d)
    hits = lexical_search(kg, index, query, limit)
    return hits, nodes


def summary(reader: GraphReader, k_entities: int = 10, k_relations: int = 15) -> dict[str, Any]:
    """What a build answers: entity and edge counts, classes, the most connected entities (ties: more mentions,
    then id), relation counts. Aggregates in the database over its edge table: no relation is read here."""
    nodes, edges = reader.counts()
    kth = reader.kth_degree(k_entities)
    degree = reader.degrees(kth)  # every entity that can rank (all with a degree when kth is 0)
    ids = set(degree)
    if len(ids) < k_entities:  # fewer connected entities than asked: the rest by mentions
        ids = set(reader.entity_rows())
    mentions = reader.mentions(ids)
    ranked = sorted(ids, key=lambda n: (-degree.get(n, 0), -mentions.get(n, 0), n))[:k_entities]
    rows = reader.entity_rows(ranked)
    types = reader.types()
    taxonomy = reader.taxonomy()
    classes = set(types)
    for t in types:
        path = taxonomy.get(t) or []
        for depth in range(1, len(path) + 1):
            classes.add(path[0] if depth == 1 else " > ".join(path[:depth]))
    return {"documents": reader.documents(), "nodes": nodes, "edges": edges, "classes": sorted(classes),
            "top_entities": [{"name": rows[n][1], "type": rows[n][0], "degree": degree.get(n, 0)}
                             for n in ranked if n in rows],
            "relation_types": reader.relation_counts(k_relations)}
