"""A self-contained, offline HTML view of a graph: one file, vis-network inlined (vendored from npm, MIT /
Apache-2.0, licences beside it in ontology/vendor/vis-network/), no CDN, no network.

What a person can read: the most connected entities (TOP_NODES, about 150) are drawn at first, coloured by type
and sized by degree; typed relations (facts) are labelled arrows, co-occurrence (context) faint dashed lines.
Filters switch entity types and relations on and off; a search box finds any entity by name or alias, also
one not drawn yet, and reveals it with its neighbourhood; a legend names the colours and the line styles;
clicking a node shows its type, aliases and the sentences it appears in, with the evidence of its relations.
Nodes not drawn are kept out of the physics (a DataView), so a graph of thousands of entities lays out as fast
as its top 150; the layout is seeded, so the same graph draws the same way.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path

from ontology.graph import KnowledgeGraph
from ontology.relations import CO_OCCURS

TOP_NODES = 150
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac"]
MAX_EDGE_EVIDENCE_SHOWN = 3


def _vendored_js() -> str:
    js = resources.files("ontology").joinpath("vendor/vis-network/vis-network.min.js").read_text(encoding="utf-8")
    # the source map is not shipped: drop the reference so nothing tries to fetch it
    return "\n".join(line for line in js.splitlines() if not line.startswith("//# sourceMappingURL="))


def view_data(kg: KnowledgeGraph, top: int = TOP_NODES) -> dict:
    g = kg.graph
    ids = kg.entity_ids()
    types = sorted({g.nodes[n]["type"] for n in ids})
    colour = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)}
    nodes, edges = [], []
    degree = dict.fromkeys(ids, 0)
    relations: dict[str, int] = {}
    for u, v, k, d in g.edges(keys=True, data=True):
        if d["kind"] == "ontology":
            continue
        degree[u] += 1
        degree[v] += 1
        co = k == CO_OCCURS
        relations[k] = relations.get(k, 0) + 1
        edges.append({"from": u, "to": v, "label": "" if co else k, "relation": k, "weight": d["weight"],
                      "typed": not co, "evidence": [{"doc": e["doc"], "sentence": e["sentence"]}
                                                    for e in d["evidence"][:MAX_EDGE_EVIDENCE_SHOWN]]})
    ranked = sorted(ids, key=lambda n: (-degree[n], -g.nodes[n]["mentions"], n))
    shown = set(ranked[:top])
    for n in ranked:
        d = g.nodes[n]
        nodes.append({"id": n, "label": d["label"], "type": d["type"], "aliases": d["aliases"],
                      "mentions": d["mentions"], "documents": d["documents"], "degree": degree[n],
                      "value": 1 + degree[n], "color": colour[d["type"]], "top": n in shown,
                      "evidence": [{"doc": e["doc"], "sentence": e["sentence"]} for e in d["evidence"]]})
    rel_order = sorted(relations, key=lambda r: (r == CO_OCCURS, -relations[r], r))
    return {"nodes": nodes, "edges": edges, "types": colour, "relations": {r: relations[r] for r in rel_order},
            "top": top}


TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;font:14px system-ui,sans-serif;display:flex;flex-direction:column;height:100vh}
header{padding:6px 10px;border-bottom:1px solid #ddd;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
#search{width:260px;padding:4px}
main{flex:1;display:flex;min-height:0}
#filters{width:210px;overflow:auto;border-right:1px solid #ddd;padding:6px 10px;font-size:13px}
#filters label{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#graph{flex:1;min-width:0}
#details{width:340px;overflow:auto;border-left:1px solid #ddd;padding:8px 12px}
.legend span{display:inline-block;margin-right:8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:3px}
.legend b{display:inline-block;width:22px;height:0;margin:0 4px 3px 0;vertical-align:middle}
.ev{margin:4px 0 8px;padding-left:8px;border-left:3px solid #ccc}
.doc{color:#777;font-size:12px}
</style></head><body>
<header><strong>__TITLE__</strong>
<span id="counts"></span>
<input id="search" type="search" placeholder="find an entity by name or alias" aria-label="search">
<span id="search-result"></span>
<span class="legend" id="legend"></span></header>
<main><aside id="filters"><h4>Entity types</h4><div id="type-filters"></div>
<h4>Relations</h4><div id="relation-filters"></div></aside>
<div id="graph"></div><aside id="details"><p>Click a node to see its aliases and evidence.</p></aside></main>
<script type="application/json" id="kg-data">__DATA__</script>
<script>__VIS__</script>
<script>
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("kg-data").textContent);
  const byId = new Map(data.nodes.map(n => [n.id, n]));
  const shown = new Set(data.nodes.filter(n => n.top).map(n => n.id));  // drawn nodes: top + revealed
  const hiddenTypes = new Set(), hiddenRelations = new Set();
  const counts = document.getElementById("counts");
  counts.dataset.nodes = String(data.nodes.length);
  counts.dataset.edges = String(data.edges.length);
  function el(tag, text) { const e = document.createElement(tag); e.textContent = text; return e; }
  const legend = document.getElementById("legend");
  for (const [type, colour] of Object.entries(data.types)) {
    const s = document.createElement("span"), dot = document.createElement("i");
    dot.style.background = colour;
    s.append(dot, type);
    legend.append(s);
  }
  for (const [text, style] of [["fact (typed relation)", "2px solid #555"], ["co-occurrence", "1px dashed #ccc"]]) {
    const s = document.createElement("span"), line = document.createElement("b");
    line.style.borderTop = style;
    s.append(line, text);
    legend.append(s);
  }
  const nodeSet = new vis.DataSet(data.nodes.map(n => ({id: n.id, label: n.label, value: n.value,
    color: n.color, title: n.type + " · " + n.mentions + " mentions", shape: "dot", type: n.type})));
  const edgeSet = new vis.DataSet(data.edges.map((e, i) => ({id: i, from: e.from, to: e.to, label: e.label,
    relation: e.relation, dashes: !e.typed, arrows: e.typed ? "to" : "", width: e.typed ? 2 : 1,
    color: e.typed ? {color: "#555"} : {color: "#ccc", opacity: 0.35},
    font: e.typed ? {size: 10, align: "middle"} : {size: 0}})));
  const nodes = new vis.DataView(nodeSet, {filter: n => shown.has(n.id) && !hiddenTypes.has(n.type)});
  const edges = new vis.DataView(edgeSet, {filter: e => !hiddenRelations.has(e.relation)});
  function updateCounts() {
    const visible = nodes.getIds().length;
    counts.textContent = visible + " of " + data.nodes.length + " entities shown, " + data.edges.length + " relations";
    counts.dataset.visible = String(visible);
  }
  function filterBox(container, items, hidden, key) {
    for (const [name, n] of items) {
      const label = document.createElement("label"), box = document.createElement("input");
      box.type = "checkbox"; box.checked = true; box.dataset[key] = name;
      box.addEventListener("change", () => {
        if (box.checked) hidden.delete(name); else hidden.add(name);
        nodes.refresh(); edges.refresh(); updateCounts();
      });
      label.append(box, " " + name + (n === null ? "" : " (" + n + ")"));
      container.append(label);
    }
  }
  filterBox(document.getElementById("type-filters"), Object.keys(data.types).map(t => [t, null]), hiddenTypes, "type");
  filterBox(document.getElementById("relation-filters"), Object.entries(data.relations), hiddenRelations, "relation");
  const network = new vis.Network(document.getElementById("graph"), {nodes, edges}, {
    layout: {randomSeed: 27, improvedLayout: false},
    nodes: {scaling: {min: 6, max: 40, label: {enabled: true, min: 10, max: 24}}, font: {size: 12}},
    edges: {smooth: false},
    physics: {stabilization: {iterations: 200, updateInterval: 50}, barnesHut: {gravitationalConstant: -4000}},
    interaction: {hover: true}});
  updateCounts();
  const started = performance.now();
  network.once("stabilizationIterationsDone", () => {
    network.setOptions({physics: false});
    document.body.dataset.layoutMs = String(Math.round(performance.now() - started));
    document.body.dataset.ready = "true";
  });
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
    rel.sort((a, b) => (b.typed - a.typed) || (b.weight - a.weight));
    if (rel.length) box.append(el("h4", "Relations"));
    for (const e of rel.slice(0, 30)) {
      const other = byId.get(e.from === id ? e.to : e.from);
      const line = el("div", (e.from === id ? "→ " : "← ") + (e.typed ? e.relation : "co-occurs with") + " " +
        (other ? other.label : "") + " (" + e.weight + ")");
      line.className = e.typed ? "rel fact" : "rel context";
      box.append(line);
      for (const ev of e.evidence.slice(0, 1)) {
        const d = el("div", ev.sentence); d.className = "ev"; box.append(d);
      }
    }
  }
  function reveal(id) {  // a node and its neighbours join the drawing, placed around it (the layout is fixed)
    const drawn = nodes.get(id) !== null;
    const centre = drawn ? network.getPosition(id) : network.getViewPosition();
    const fresh = drawn ? [] : [id];
    for (const e of data.edges) {
      for (const [a, b] of [[e.from, e.to], [e.to, e.from]]) {
        if (a === id && !shown.has(b) && !fresh.includes(b)) fresh.push(b);
      }
    }
    fresh.forEach((n, i) => {
      const r = n === id ? 0 : 120 + 6 * fresh.length, t = 2 * Math.PI * i / Math.max(fresh.length, 1);
      nodeSet.update({id: n, x: centre.x + r * Math.cos(t), y: centre.y + r * Math.sin(t)});
      shown.add(n);
    });
    nodes.refresh(); updateCounts();
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
    hiddenTypes.delete(hits[0].type);
    for (const box of document.querySelectorAll("#type-filters input")) {
      if (box.dataset.type === hits[0].type) box.checked = true;
    }
    reveal(hits[0].id);
    network.selectNodes([hits[0].id]);
    network.focus(hits[0].id, {scale: 1.2, animation: false});
    show(hits[0].id);
  });
  window.kgView = {network, data, show, reveal, nodes, edges};
})();
</script></body></html>
"""


def render_html(kg: KnowledgeGraph, title: str = "Knowledge graph") -> str:
    data = json.dumps(view_data(kg), ensure_ascii=False).replace("</", "<\\/")
    return (TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
            .replace("__VIS__", _vendored_js()))


def write_html(kg: KnowledgeGraph, path: Path, title: str = "Knowledge graph") -> None:
    path.write_text(render_html(kg, title), encoding="utf-8")
