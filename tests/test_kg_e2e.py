"""Knowledge graphs end to end: `sie-tools kg build` over the bundled corpus (in-process and against a running
server), the graph checked against what the documents say, the HTML view in headless Chromium, the navigation
tools over MCP and HTTP, graphs as MCP resources, a graph surviving a server restart, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
from mcp import Client

from ontology.graph import KnowledgeGraph
from ontology.resolution import normalize

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "data" / "kg_corpus"
SIE = str(Path(sys.executable).with_name("sie-tools"))
CHROMIUM = "/usr/bin/chromium"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def kg_build(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SIE, "kg", "build", *args], capture_output=True, text=True, timeout=timeout,
                          env={**ENV, **(env or {})})


def load(out: Path) -> KnowledgeGraph:
    return KnowledgeGraph.from_json(json.loads((out / "graph.json").read_text()))


def entity(kg: KnowledgeGraph, name: str) -> dict:
    hits = [d for n, d in kg.graph.nodes(data=True) if d["kind"] == "entity"
            and normalize(name) in {normalize(x) for x in [d["label"], *d["aliases"]]}]
    assert len(hits) == 1, (name, hits)
    return hits[0]


def related(kg: KnowledgeGraph, a: str, relation: str, b: str) -> bool:
    ids = {d["label"]: n for n, d in kg.graph.nodes(data=True) if d["kind"] == "entity"}
    return kg.graph.has_edge(ids[entity(kg, a)["label"]], ids[entity(kg, b)["label"]], relation)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, KnowledgeGraph, str]:
    out = tmp_path_factory.mktemp("kg") / "out"
    done = kg_build(str(CORPUS), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, load(out), done.stdout


def test_kg_build_matches_the_documents(built):
    out, kg, stdout = built
    assert sorted(p.name for p in out.iterdir()) == ["graph.graphml", "graph.html", "graph.json", "graph.jsonld",
                                                     "graph.ttl"]
    assert "14 documents" in stdout  # 12 text files + 2 jsonl records
    g = kg.graph
    people = {d["label"] for _, d in g.nodes(data=True) if d.get("type") == "PERSON"}
    places = {d["label"] for _, d in g.nodes(data=True) if d.get("type") in ("GPE", "LOC")}
    orgs = {d["label"] for _, d in g.nodes(data=True) if d.get("type") == "ORG"}
    assert {"Marie Curie", "Pierre Curie", "Paris Hilton", "Satya Nadella", "Sundar Pichai", "Tim Cook",
            "Arvind Krishna", "Reid Hoffman", "Neil Armstrong", "Angela Merkel", "Conrad Hilton"} <= people
    assert {"Paris", "Warsaw", "Zurich", "New York City", "Berlin", "Redmond", "Cupertino", "Ohio"} <= places
    assert {"International Business Machines", "United Nations", "Microsoft", "LinkedIn", "Google", "YouTube",
            "Apple", "National Aeronautics and Space Administration", "Hilton Hotels"} <= orgs
    # one node per real-world entity: aliases merged, look-alikes kept apart
    assert {"IBM", "I.B.M."} <= set(entity(kg, "IBM")["aliases"]) and entity(kg, "IBM")["mentions"] == 6
    assert entity(kg, "U.N.")["label"] == "United Nations" and entity(kg, "NASA")["type"] == "ORG"
    assert "Apple Inc." in entity(kg, "Apple")["aliases"]
    assert entity(kg, "Paris")["type"] == "GPE" and entity(kg, "Paris Hilton")["type"] == "PERSON"
    assert entity(kg, "Marie Curie") is not entity(kg, "Pierre Curie")
    assert entity(kg, "New York City") is not entity(kg, "New York")
    labels = [normalize(d["label"]) for _, d in g.nodes(data=True) if d["kind"] == "entity"]
    assert len(labels) == len(set(labels))
    # who is linked to whom
    for fact in [("Satya Nadella", "heads", "Microsoft"), ("Microsoft", "acquired", "LinkedIn"),
                 ("Reid Hoffman", "founded", "LinkedIn"), ("Sundar Pichai", "heads", "Google"),
                 ("Google", "acquired", "YouTube"), ("Tim Cook", "heads", "Apple"), ("Steve Jobs", "founded", "Apple"),
                 ("Arvind Krishna", "heads", "IBM"), ("Gerd Binnig", "works_for", "IBM"),
                 ("Neil Armstrong", "works_for", "NASA"), ("Marie Curie", "born_in", "Warsaw"),
                 ("Marie Curie", "married", "Pierre Curie"), ("Paris Hilton", "born_in", "New York City"),
                 ("Conrad Hilton", "founded", "Hilton Hotels"), ("Antonio Guterres", "heads", "U.N.")]:
        assert related(kg, *fact), fact
    assert not related(kg, "Paris Hilton", "born_in", "Paris")
    ibm_lead = [d for u, v, k, d in g.edges(keys=True, data=True) if k == "heads" and v.endswith("machines")][0]
    assert ibm_lead["evidence"][0]["doc"] == "ibm.txt"
    text = (CORPUS / "ibm.txt").read_text()
    ev = ibm_lead["evidence"][0]
    assert text[slice(*ev["source_span"])] == "Arvind Krishna" and text[slice(*ev["target_span"])] == "IBM"
    assert entity(kg, "Chad Hurley")["doc_ids"] == ["youtube"]  # .jsonl records keep their ids


def test_html_view_in_chromium(built, tmp_path):
    from playwright.sync_api import sync_playwright

    out, kg, _ = built
    n_entities = len(kg.entity_ids())
    html = (out / "graph.html").read_text()
    assert "http://" not in html.split("<script>", 1)[0] and "<script src" not in html  # nothing fetched
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning")
                    else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith("file:")
                    else None)
            page.goto((out / "graph.html").as_uri())
            page.wait_for_selector("body[data-ready=true]", timeout=90_000)
            assert page.locator("#counts").get_attribute("data-nodes") == str(n_entities)
            assert page.evaluate("window.kgView.network.body.data.nodes.length") == n_entities
            # click the IBM node where it is drawn on the canvas
            node_id = next(n for n in kg.entity_ids() if kg.graph.nodes[n]["label"] == "International Business "
                                                                                        "Machines")
            page.evaluate(f"window.kgView.network.focus({json.dumps(node_id)}, {{scale: 1.5, animation: false}})")
            xy = page.evaluate(f"""(() => {{ const n = window.kgView.network;
                const p = n.getPositions([{json.dumps(node_id)}])[{json.dumps(node_id)}];
                const d = n.canvasToDOM(p); const r = document.querySelector('#graph canvas').getBoundingClientRect();
                return [r.left + d.x, r.top + d.y]; }})()""")
            page.mouse.click(xy[0], xy[1])
            details = page.locator("#details")
            details.locator("h3").wait_for(timeout=10_000)
            assert details.locator("h3").inner_text() == "International Business Machines"
            assert "I.B.M." in details.locator(".aliases").inner_text()
            assert "Arvind Krishna leads IBM." in details.inner_text()  # an evidence sentence
            page.screenshot(path=str(tmp_path / "graph.png"))
            # the search box finds a node by an alias
            page.fill("#search", "U.N.")
            page.press("#search", "Enter")
            assert details.locator("h3").inner_text() == "United Nations"
        finally:
            browser.close()
    assert (tmp_path / "graph.png").stat().st_size > 10_000
    assert problems == []


def test_bad_input_gives_clear_messages_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    r = kg_build(str(empty), "--out", str(out))
    assert r.returncode == 2 and "no documents" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "blob.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (bad / "latin1.txt").write_bytes("Zoë Müller founded Café Crème in Zürich.".encode("latin-1"))
    (bad / "blank.md").write_text("   \n\n")
    (bad / "broken.jsonl").write_text('{"text": "fine"\n{"id": 3}\n')
    out.mkdir()
    (out / "keep.txt").write_text("an earlier build")
    r = kg_build(str(bad), "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert "skipped blob.txt: binary file" in r.stderr
    assert "skipped latin1.txt: not UTF-8 (byte 0xeb at offset 2)" in r.stderr
    assert "skipped broken.jsonl:1: not JSON" in r.stderr and "skipped broken.jsonl:2: no 'text' string" in r.stderr
    assert "skipped blank.md: empty" in r.stderr and "every file" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # the old output untouched
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    # good files among the bad ones: a graph of them, the others reported; a file longer than the
    # per-text limit becomes parts with their own ids
    (bad / "good.txt").write_text("Ada Lovelace worked with Charles Babbage in London. " * 3)
    (bad / "long.txt").write_text(LONG_PARAGRAPH * 150)  # ~20k characters
    r = kg_build(str(bad), "--out", str(out), env={"SIE_MAX_CHARS": "5000"})
    assert r.returncode == 0, r.stderr
    assert "5 inputs skipped" in r.stdout and "skipped latin1.txt" in r.stderr
    kg = load(out)
    assert entity(kg, "Ada Lovelace")["type"] == "PERSON" and not (out / "keep.txt").exists()
    assert len(kg.records) >= 5 and {"good.txt", "long.txt#1", "long.txt#2"} <= set(kg.records)


LONG_PARAGRAPH = ("Grace Hopper worked for the United States Navy in Arlington. She wrote compilers for "
                  "Remington Rand and taught at Vassar College.\n\n")


def test_huge_files_are_streamed_with_bounded_memory(tmp_path):
    from sie_mcp.kg_builder import iter_documents

    folder = tmp_path / "docs"
    folder.mkdir()
    with (folder / "huge.txt").open("w") as f:  # ~30 MB
        for _ in range(30_000_000 // len(LONG_PARAGRAPH)):
            f.write(LONG_PARAGRAPH)
    skipped: list[str] = []
    tracemalloc.start()
    parts = chars = 0
    for d in iter_documents(folder, 100_000, skipped):
        if d.text:
            parts += 1
            chars += len(d.text)
            assert len(d.text) <= 100_000
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert skipped == [] and chars == (folder / "huge.txt").stat().st_size and parts >= 300
    assert peak < 12 * 2**20, peak  # a few blocks, not the 30 MB file


# --- against a running server -------------------------------------------------------------------------


class Server:
    def __init__(self, data_dir: Path, log: Path, extra: list[str] | None = None) -> None:
        self.data_dir, self.log, self.extra = data_dir, log, extra or []
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen([SIE, "serve", "--transport", "http", "--port", str(port), "--data-dir",
                                          str(self.data_dir), *self.extra], stdout=out, stderr=subprocess.STDOUT,
                                         env=ENV)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{self.log.read_text()}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("server")
    s = Server(base / "data", base / "server.log")
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def remote_graph(server, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("remote") / "out"
    # through the example script (a thin wrapper of `sie-tools kg build`), against the server over MCP
    r = subprocess.run([sys.executable, str(REPO / "examples" / "agents" / "kg_build.py"), str(CORPUS), str(out),
                        "--server", server.url, "--batch", "5"], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr
    assert f"open {out}/graph.html" in r.stdout
    graph_id = r.stdout.split("graph id on the server: ")[1].split()[0]
    assert (server.data_dir / "graphs" / "graphs.sqlite3").is_file()  # the database store (ontology/store.py)
    assert len(load(out).entity_ids()) > 40
    return graph_id


@pytest.mark.anyio
async def test_navigation_over_mcp(server, remote_graph):
    g = remote_graph
    async with Client(f"{server.url}/mcp") as client:
        found = (await client.call_tool("graph_search", {"graph": g, "query": "I.B.M."})).structured_content
        assert found["matches"][0]["name"] == "International Business Machines"
        assert found["matches"][0]["match"] == "name"
        near = (await client.call_tool("graph_neighbors", {"graph": g, "entity": "IBM"})).structured_content
        by_name = {n["name"]: n for n in near["neighbors"]}
        assert by_name["Arvind Krishna"]["via"]["relation"] == "heads"
        assert by_name["Arvind Krishna"]["via"]["evidence"]["sentence"] == "Arvind Krishna leads IBM."
        assert near["total"] >= len(near["neighbors"])
        path = (await client.call_tool("graph_path", {"graph": g, "source": "Satya Nadella",
                                                       "target": "Reid Hoffman"})).structured_content
        assert path["found"] and [h["to_name"] for h in path["hops"]][-1] == "Reid Hoffman"
        assert len(path["hops"]) == 3  # Nadella - Microsoft - LinkedIn - Hoffman
        sub = (await client.call_tool("graph_subgraph", {"graph": g, "entities": ["Microsoft", "LinkedIn", "Google",
                                                                                  "Nobody Known"]})).structured_content
        assert {(e["relation"]) for e in sub["edges"]} >= {"acquired"} and sub["unknown"] == ["Nobody Known"]
        fuzzy = (await client.call_tool("graph_search", {"graph": g, "query": "space agency"})).structured_content
        assert fuzzy["matches"] and all(m["match"] in ("embedding", "partial", "words") for m in fuzzy["matches"])
        missing = await client.call_tool("graph_neighbors", {"graph": g, "entity": "Atlantis"})
        assert missing.is_error and "graph_search" in missing.content[0].text
        resources = (await client.list_resources()).resources
        assert f"graph://{g}" in {str(r.uri) for r in resources}
        templates = (await client.list_resource_templates()).resource_templates
        assert "graph://{graph_id}" in {t.uri_template for t in templates}
        body = (await client.read_resource(f"graph://{g}")).contents[0].text
        assert len(KnowledgeGraph.from_json(json.loads(body)).records) == 14
        # build_ontology sends progress notifications and answers with a compact summary
        seen: list[float] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(done)

        texts = [f"Engineer {name} joined Microsoft in Redmond." for name in ("Alan Kay", "Butler Lampson")] * 10
        result = await client.call_tool("build_ontology", {"texts": texts, "graph": "small"},
                                        progress_callback=progress)
        summary = result.structured_content
        assert not result.is_error and summary["graph"] == "small" and summary["documents"] == 2
        assert len(result.content[0].text) < 2000 and "evidence" not in result.content[0].text
        assert seen and seen == sorted(seen)


def test_navigation_over_http(server, remote_graph):
    g = remote_graph
    r = httpx.post(f"{server.url}/v1/tools/graph_neighbors", json={"graph": g, "entity": "Marie Curie", "limit": 3},
                   timeout=60)
    assert r.status_code == 200 and len(r.json()["neighbors"]) == 3 and r.json()["total"] > 3
    r = httpx.post(f"{server.url}/v1/tools/graph_path", json={"graph": g, "source": "Marie Curie",
                                                               "target": "Warsaw"}, timeout=60)
    assert r.json()["found"] and r.json()["hops"][0]["relation"] == "born_in"
    r = httpx.post(f"{server.url}/v1/tools/graph_search", json={"graph": "no-such-graph", "query": "x"}, timeout=60)
    assert r.status_code == 404 and "build_ontology" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/tools/build_ontology", json={"texts": ["x"], "graph": "../etc"}, timeout=60)
    assert r.status_code == 422 and "graph: String should match pattern" in r.json()["error"]["message"]


def test_graph_survives_restart(server, remote_graph):
    server.stop()
    server.start()
    r = httpx.post(f"{server.url}/v1/tools/graph_neighbors", json={"graph": remote_graph, "entity": "Google"},
                   timeout=60)
    assert r.status_code == 200
    assert {n["name"] for n in r.json()["neighbors"]} >= {"Sundar Pichai", "YouTube"}
