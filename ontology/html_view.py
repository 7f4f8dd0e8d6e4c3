"""A self-contained, offline HTML view of a graph: one file, vis-network inlined (vendored from npm, MIT /
Apache-2.0, licences beside it in ontology/vendor/vis-network/), no CDN, no network.

Entities are nodes coloured by type and sized by degree; typed relations are labelled arrows, co-occurrence
thin dashed lines. A search box finds a node by name or alias; clicking a node shows its type, aliases and
the sentences it appears in, with the evidence of its relations.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path

from ontology.graph import KnowledgeGraph
from ontology.relations import CO_OCCURS

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]
MAX_EDGE_EVIDENCE_SHOWN = 3


def _vendored_js() -> str:
    js = resources.files("ontology").joinpath("vendor/vis-network/vis-network.min.js").read_text(encoding="utf-8")
    # the source map is not shipped: drop the reference so nothing tries to fetch it
    return "\n".join(line for line in js.splitlines() if not line.startswith("//# sourceMappingURL="))


def view_data(kg: KnowledgeGraph) -> dict:
    g = kg.graph
    types = sorted({g.nodes[n]["type"] for n in kg.entity_ids()})
    colour = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)}
    nodes, edges = [], []
    degree = {n: 0 for n in kg.entity_ids()}
    for u, v, k, d in g.edges(keys=True, data=True):
        if d["kind"] == "ontology":
            continue
        degree[u] += 1
        degree[v] += 1
        co = k == CO_OCCURS
        edges.append({"from": u, "to": v, "label": "" if co else k, "relation": k, "weight": d["weight"],
                      "dashes": co, "arrows": "" if co else "to", "width": 1 if co else 2,
                      "evidence": [{"doc": e["doc"], "sentence": e["sentence"]}
                                   for e in d["evidence"][:MAX_EDGE_EVIDENCE_SHOWN]]})
    for n in kg.entity_ids():
        d = g.nodes[n]
        nodes.append({"id": n, "label": d["label"], "type": d["type"], "aliases": d["aliases"],
                      "mentions": d["mentions"], "documents": d["documents"], "degree": degree[n],
                      "value": 1 + degree[n], "color": colour[d["type"]],
                      "evidence": [{"doc": e["doc"], "sentence": e["sentence"]} for e in d["evidence"]]})
    return {"nodes": nodes, "edges": edges, "types": colour}


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;font:14px system-ui,sans-serif;display:flex;flex-direction:column;height:100vh}
header{padding:6px 10px;border-bottom:1px solid #ddd;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
#search{width:260px;padding:4px}
main{flex:1;display:flex;min-height:0}
#graph{flex:1;min-width:0}
#details{width:340px;overflow:auto;border-left:1px solid #ddd;padding:8px 12px}
.legend span{display:inline-block;margin-right:8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:3px}
.ev{margin:4px 0 8px;padding-left:8px;border-left:3px solid #ccc}
.doc{color:#777;font-size:12px}
</style></head><body>
<header><strong>__TITLE__</strong>
<span id="counts"></span>
<input id="search" type="search" placeholder="find an entity by name or alias" aria-label="search">
<span id="search-result"></span>
<span class="legend" id="legend"></span></header>
<main><div id="graph"></div><aside id="details"><p>Click a node to see its aliases and evidence.</p></aside></main>
<script type="application/json" id="kg-data">__DATA__</script>
<script>__VIS__</script>
<script>
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("kg-data").textContent);
  const byId = new Map(data.nodes.map(n => [n.id, n]));
  const counts = document.getElementById("counts");
  counts.textContent = data.nodes.length + " entities, " + data.edges.length + " relations";
  counts.dataset.nodes = String(data.nodes.length);
  counts.dataset.edges = String(data.edges.length);
  const legend = document.getElementById("legend");
  for (const [type, colour] of Object.entries(data.types)) {
    const s = document.createElement("span");
    const dot = document.createElement("i");
    dot.style.background = colour;
    s.append(dot, type);
    legend.append(s);
  }
  const nodes = new vis.DataSet(data.nodes.map(n => ({id: n.id, label: n.label, value: n.value,
    color: n.color, title: n.type + " · " + n.mentions + " mentions", shape: "dot"})));
  const edges = new vis.DataSet(data.edges.map((e, i) => ({id: i, from: e.from, to: e.to, label: e.label,
    dashes: e.dashes, arrows: e.arrows, width: e.width, color: {color: e.dashes ? "#bbb" : "#555"}})));
  const network = new vis.Network(document.getElementById("graph"), {nodes, edges}, {
    nodes: {scaling: {min: 6, max: 40, label: {enabled: true, min: 10, max: 24}}, font: {size: 12}},
    edges: {font: {size: 10, align: "middle"}, smooth: false},
    physics: {stabilization: {iterations: 150}, barnesHut: {gravitationalConstant: -4000}},
    interaction: {hover: true}});
  network.once("stabilizationIterationsDone", () => {
    network.setOptions({physics: false});
    document.body.dataset.ready = "true";
  });
  function el(tag, text) { const e = document.createElement(tag); e.textContent = text; return e; }
  function show(id) {
    const n = byId.get(id);
    const box = document.getElementById("details");
    box.replaceChildren();
    if (!n) return;
    box.append(el("h3", n.label), el("p", n.type + " · " + n.mentions + " mentions in " + n.documents +
      " document(s) · degree " + n.degree));
    const aliases = el("p", "Aliases: " + (n.aliases.length ? n.aliases.join(", ") : "none"));
    aliases.className = "aliases";
    box.append(aliases, el("h4", "Evidence"));
    for (const ev of n.evidence) {
      const d = el("div", ev.sentence); d.className = "ev";
      const doc = el("div", ev.doc); doc.className = "doc"; d.append(doc); box.append(d);
    }
    const rel = data.edges.filter(e => (e.from === id || e.to === id));
    rel.sort((a, b) => (a.dashes - b.dashes) || (b.weight - a.weight));
    if (rel.length) box.append(el("h4", "Relations"));
    for (const e of rel.slice(0, 30)) {
      const other = byId.get(e.from === id ? e.to : e.from);
      const line = el("div", (e.from === id ? "→ " : "← ") + e.relation + " " + (other ? other.label : "") +
        " (" + e.weight + ")");
      line.className = "rel";
      box.append(line);
      for (const ev of e.evidence.slice(0, 1)) {
        const d = el("div", ev.sentence); d.className = "ev"; box.append(d);
      }
    }
  }
  network.on("click", params => { if (params.nodes.length) show(params.nodes[0]); });
  const search = document.getElementById("search");
  const result = document.getElementById("search-result");
  function find(q) {
    q = q.trim().toLowerCase();
    if (!q) return [];
    const exact = data.nodes.filter(n => [n.label, ...n.aliases].some(s => s.toLowerCase() === q));
    if (exact.length) return exact;
    return data.nodes.filter(n => [n.label, ...n.aliases].some(s => s.toLowerCase().includes(q)));
  }
  search.addEventListener("keydown", ev => {
    if (ev.key !== "Enter") return;
    const hits = find(search.value);
    result.textContent = hits.length ? hits.length + " found" : "no match";
    if (!hits.length) return;
    network.selectNodes(hits.map(n => n.id));
    network.focus(hits[0].id, {scale: 1.2, animation: false});
    show(hits[0].id);
  });
  window.kgView = {network, data, show};
})();
</script></body></html>
"""


def render_html(kg: KnowledgeGraph, title: str = "Knowledge graph") -> str:
    data = json.dumps(view_data(kg), ensure_ascii=False).replace("</", "<\\/")
    return (TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
            .replace("__VIS__", _vendored_js()))


def write_html(kg: KnowledgeGraph, path: Path, title: str = "Knowledge graph") -> None:
    path.write_text(render_html(kg, title), encoding="utf-8")
