"""Exports of a knowledge graph: node-link JSON (re-importable), GraphML, RDF Turtle and JSON-LD.

RDF vocabulary (namespace `kg:` = https://w3id.org/sie-mcp/kg#, entities under
https://w3id.org/sie-mcp/kg/entity/, classes under .../class/, relations under .../relation/):
  entity  a <class/TYPE> ; rdfs:label name ; skos:altLabel alias … ; kg:mentions n ; kg:documents n
  <class/TYPE> a rdfs:Class, owl:Class ; rdfs:label ; rdfs:subClassOf <class/A/B> (taxonomy)
  entity <relation/work_for> entity            (one triple per relation edge: the fact itself)
  [] a rdf:Statement ; rdf:subject ; rdf:predicate ; rdf:object ; kg:weight n ;
     kg:evidence "first sentence" ; kg:document "doc id"   (the edge's weight and evidence, reified)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import networkx as nx
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL, RDF, RDFS, SKOS, XSD

from ontology.graph import INSTANCE_OF, SUBCLASS_OF, KnowledgeGraph

BASE = "https://w3id.org/sie-mcp/kg/"
KG = Namespace("https://w3id.org/sie-mcp/kg#")


def write_json(kg: KnowledgeGraph, path: Path) -> None:
    path.write_text(json.dumps(kg.to_json(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def to_graphml_graph(kg: KnowledgeGraph) -> nx.MultiDiGraph:
    """GraphML holds scalars only: lists and dicts become JSON strings (documented per attribute)."""
    g = nx.MultiDiGraph()
    g.graph.update({k: v for k, v in kg.graph.graph.items() if isinstance(v, str | int | float | bool)})

    def flat(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v if isinstance(v, str | int | float | bool) else json.dumps(v, ensure_ascii=False)
                for k, v in d.items()}

    for n, d in kg.graph.nodes(data=True):
        g.add_node(n, **flat(d))
    for u, v, k, d in kg.graph.edges(keys=True, data=True):
        g.add_edge(u, v, key=k, **flat(d))
    return g


def write_graphml(kg: KnowledgeGraph, path: Path) -> None:
    nx.write_graphml(to_graphml_graph(kg), path)


def _iri(kind: str, name: str) -> URIRef:
    return URIRef(BASE + kind + "/" + quote(name, safe=""))


def to_rdf(kg: KnowledgeGraph) -> Graph:
    rdf = Graph()
    rdf.bind("kg", KG)
    rdf.bind("skos", SKOS)
    rdf.bind("owl", OWL)
    g = kg.graph
    for n, d in g.nodes(data=True):
        if d["kind"] == "class":
            c = _iri("class", n.removeprefix("class:"))
            rdf.add((c, RDF.type, RDFS.Class))
            rdf.add((c, RDF.type, OWL.Class))
            rdf.add((c, RDFS.label, Literal(d["label"])))
            continue
        e = _iri("entity", n)
        rdf.add((e, RDFS.label, Literal(d["label"])))
        for alias in d["aliases"]:
            rdf.add((e, SKOS.altLabel, Literal(alias)))
        rdf.add((e, KG.mentions, Literal(d["mentions"], datatype=XSD.integer)))
        rdf.add((e, KG.documents, Literal(d["documents"], datatype=XSD.integer)))
    for u, v, k, d in g.edges(keys=True, data=True):
        if k == INSTANCE_OF:
            rdf.add((_iri("entity", u), RDF.type, _iri("class", v.removeprefix("class:"))))
            continue
        if k == SUBCLASS_OF:
            rdf.add((_iri("class", u.removeprefix("class:")), RDFS.subClassOf,
                     _iri("class", v.removeprefix("class:"))))
            continue
        s, p, o = _iri("entity", u), _iri("relation", k), _iri("entity", v)
        rdf.add((s, p, o))
        st = BNode()
        rdf.add((st, RDF.type, RDF.Statement))
        rdf.add((st, RDF.subject, s))
        rdf.add((st, RDF.predicate, p))
        rdf.add((st, RDF.object, o))
        rdf.add((st, KG.weight, Literal(d["weight"], datatype=XSD.integer)))
        if d["evidence"]:
            rdf.add((st, KG.evidence, Literal(d["evidence"][0]["sentence"])))
            rdf.add((st, KG.document, Literal(d["evidence"][0]["doc"])))
    return rdf


def write_turtle(kg: KnowledgeGraph, path: Path, rdf: Graph | None = None) -> None:
    (rdf or to_rdf(kg)).serialize(destination=str(path), format="turtle")


def write_jsonld(kg: KnowledgeGraph, path: Path, rdf: Graph | None = None) -> None:
    context = {"kg": str(KG), "rdfs": str(RDFS), "skos": str(SKOS), "owl": str(OWL)}
    (rdf or to_rdf(kg)).serialize(destination=str(path), format="json-ld", context=context, indent=1)


def write_all(kg: KnowledgeGraph, folder: Path, title: str = "Knowledge graph") -> list[Path]:
    """Every export and the HTML view into `folder`, which must exist (the RDF graph is built once)."""
    from ontology.html_view import write_html

    rdf = to_rdf(kg)
    write_json(kg, folder / "graph.json")
    write_graphml(kg, folder / "graph.graphml")
    write_turtle(kg, folder / "graph.ttl", rdf)
    write_jsonld(kg, folder / "graph.jsonld", rdf)
    write_html(kg, folder / "graph.html", title)
    return [folder / n for n in ("graph.json", "graph.graphml", "graph.ttl", "graph.jsonld", "graph.html")]
