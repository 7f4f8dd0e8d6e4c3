"""The database graph store, on SQLite and on a real PostgreSQL server (tests/pg_server.py): a refused, a cancelled
and a failing build each leave the graph exactly as it was and the next build works; two processes building one
graph at once keep every document; a restart keeps everything; an old JSON graph is imported once; readers see a
snapshot; incremental builds in any order or split equal a one-shot build.

Records are made by hand (mentions and co-occurrence, no model): what is tested is the store, not extraction."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from ontology.graph import DocRecord, KnowledgeGraph, extract
from ontology.inputs import Mention, ParsedDoc
from ontology.store import BuildCancelled, GraphStore, GraphTooLarge
from tests.pg_server import PostgresServer, pg_bin

NAMES = [("PERSON", "Amara Brandt"), ("ORG", "Northwind"), ("GPE", "Oslo"), ("PERSON", "Brandt"),
         ("ORG", "Kestrel Labs"), ("GPE", "Bergen"), ("PERSON", "Tomas Veld"), ("ORG", "KL")]


def make_record(doc_id: str, sentences: list[list[tuple[str, str]]]) -> DocRecord:
    """A document of one sentence per list, each naming its (label, name)s: "A and B met."."""
    text, mentions, spans = "", [], []
    for picks in sentences:
        start = len(text)
        for k, (label, name) in enumerate(picks):
            text += " and " if k else ""
            mentions.append(Mention(len(text), len(text) + len(name), name, label))
            text += name
        text += f" met {doc_id}."
        spans.append((start, len(text)))
        text += " "
    return extract(ParsedDoc(doc_id, text, tuple(spans), tuple(mentions)))


def record(i: int, doc_id: str | None = None) -> DocRecord:
    """Document i (id `doc_id`, default d<i>): two sentences, each naming two or three of NAMES (deterministic)."""
    return make_record(doc_id or f"d{i:03d}", [[NAMES[(i + s + k * 3) % len(NAMES)] for k in range(2 + (i + s) % 2)]
                                               for s in range(2)])


def vectors_for(records: list[DocRecord]) -> dict[str, np.ndarray]:
    """A fixed pseudo-random vector per text (no two texts similar: resolution merges by its rules only)."""
    out = {}
    for r in records:
        for m in r.mentions:
            seed = int(hashlib.sha1(m[1].encode()).hexdigest()[:8], 16)
            out[m[1]] = np.random.default_rng(seed).standard_normal(64).astype(np.float32)
    return out


def add(store: GraphStore, graph: str, records: list[DocRecord], **kw) -> tuple[int, int]:
    return store.add_documents(graph, records, vectors_for(records), **kw)


@pytest.fixture(scope="module")
def postgres():
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries missing: scripts/install_postgres.sh installs them")
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "graphs")
    return request.getfixturevalue("postgres").database("t" + uuid.uuid4().hex[:10])


def snapshot(store: GraphStore, graph: str) -> tuple:
    info = store.info(graph)
    return (info.version, info.bytes) if info else None, store.read_text(graph) if info else None


def test_refused_cancelled_and_failing_builds_leave_the_graph_as_it_was(location):
    store = GraphStore(location)
    add(store, "g", [record(i) for i in range(3)])
    before = snapshot(store, "g")
    big = [record(i) for i in range(3, 40)]
    store.max_bytes = store.info("g").bytes + 2000
    with pytest.raises(GraphTooLarge):
        add(store, "g", big)
    assert snapshot(store, "g") == before
    store.max_bytes = 1 << 30

    def cancel():
        raise BuildCancelled("cancelled")

    with pytest.raises(BuildCancelled):
        add(store, "g", big, checkpoint=cancel)
    assert snapshot(store, "g") == before

    def fail():
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        add(store, "g", [record(0), *big], checkpoint=fail)  # a replacement too: rolled back with the rest
    assert snapshot(store, "g") == before
    # a new graph refused leaves no graph behind
    store.max_bytes = 100
    with pytest.raises(GraphTooLarge):
        add(store, "fresh", [record(1)])
    assert not store.exists("fresh") and [i.id for i in store.list()] == ["g"]
    store.max_bytes = 1 << 30
    assert add(store, "g", [record(3)]) == (1, 0)  # the next build works
    assert store.reader("g").__enter__().documents() == 4
    store.close()


def test_incremental_any_order_or_split_equals_one_shot(location):
    store = GraphStore(location)
    records = [record(i) for i in range(12)]
    add(store, "once", records)
    for r in reversed(records):
        add(store, "one_by_one", [r])
    add(store, "split", records[5:])
    add(store, "split", records[:5])
    once = store.load("once").to_json()
    for other in ("one_by_one", "split"):
        assert store.load(other).to_json() == once
    # and what the store derives equals deriving from the records at once
    direct = KnowledgeGraph()
    direct.add(records)
    direct.rebuild(vectors_for(records))
    assert store.load("once").to_json()["nodes"] == direct.to_json()["nodes"]
    assert store.load("once").to_json()["edges"] == direct.to_json()["edges"]
    # replacing a document equals never having had its old version
    add(store, "split", [record(2)])
    assert store.load("split").to_json() == once
    store.close()


def kept_edges_agree(store: GraphStore, graph: str) -> None:
    """The edge table kept in step by the builds equals the edges counted from the relations afresh, and the
    build summary (aggregates over it) equals the one computed on the graph derived at once."""
    from ontology import navigate

    db = store.db
    kept = {(a, b, rel, kind): int(n) for a, b, rel, kind, n in db.all(
        "SELECT a, b, rel, kind, n FROM edges WHERE graph = ?", (graph,))}
    afresh: dict[tuple, int] = {}
    for a, b, rel, kind in db.all(
            "SELECT fa.entity, fb.entity, r.rel, r.kind FROM rels r JOIN forms fa ON fa.graph = r.graph AND "
            "fa.label = r.src_label AND fa.text = r.src_text JOIN forms fb ON fb.graph = r.graph AND "
            "fb.label = r.tgt_label AND fb.text = r.tgt_text WHERE r.graph = ?", (graph,)):
        key = (min(a, b), max(a, b), rel, kind) if kind == "co-occurrence" else (a, b, rel, kind)
        afresh[key] = afresh.get(key, 0) + 1
    assert kept == afresh
    degrees: dict[str, int] = {}
    relations: dict[str, int] = {}
    for a, b, rel, _ in (k for k in afresh if k[0] != k[1]):
        degrees[a], degrees[b] = degrees.get(a, 0) + 1, degrees.get(b, 0) + 1
        relations[rel] = relations.get(rel, 0) + 1
    assert dict(db.all("SELECT entity, n FROM degrees WHERE graph = ?", (graph,))) == degrees
    assert dict(db.all("SELECT rel, n FROM rel_counts WHERE graph = ?", (graph,))) == relations
    kg = store.load(graph)
    derived = {(u, v, k, d["kind"]) for u, v, k, d in kg.graph.edges(keys=True, data=True) if d["kind"] != "ontology"}
    with store.reader(graph) as r:
        assert r.edge_keys() == derived
        s = navigate.summary(r, k_entities=5, k_relations=5)
    assert (s["nodes"], s["edges"]) == (len(kg.entity_ids()), len(derived))
    assert s["top_entities"] == navigate.top_entities(kg, 5)
    assert s["relation_types"] == navigate.relation_counts(kg, 5)


def test_edge_table_follows_merges_and_replacements(location):
    store = GraphStore(location)
    amara, brandt, piet = ("PERSON", "Amara Brandt"), ("PERSON", "Brandt"), ("PERSON", "Piet Brandt")
    oslo, north = ("GPE", "Oslo"), ("ORG", "Northwind")
    steps = [[make_record("a", [[brandt, oslo]])],  # "Brandt" alone: an entity of its own
             [make_record("b", [[amara, north]])],  # now it is Amara Brandt's surname: its edge to Oslo moves
             [make_record("c", [[piet, oslo, north]])],  # two Brandts: "Brandt" stands alone again
             [make_record("c", [[north, oslo]])],  # replaced: Piet goes, and "Brandt" joins Amara again
             [make_record("a", [[oslo, north]]), make_record("a", [[brandt, north]])],  # one id twice: last wins
             [record(i) for i in range(6)]]
    for records in steps:
        add(store, "g", records)
        kept_edges_agree(store, "g")
    for table in ("edges", "degrees", "rel_counts"):  # a database from before these tables: counted when it opens
        store.db.execute(f"DELETE FROM {table}")
    store.close()
    store = GraphStore(location)
    kept_edges_agree(store, "g")
    store.close()


def test_readers_see_a_snapshot(location):
    store = GraphStore(location)
    add(store, "g", [record(0)])
    with store.reader("g") as r:
        before = r.documents(), r.edge_keys()
        t = threading.Thread(target=add, args=(store, "g", [record(i) for i in range(1, 6)]))
        t.start()
        t.join()
        assert (r.documents(), r.edge_keys()) == before
    with store.reader("g") as r:
        assert r.documents() == 6
    store.close()


WRITER = """
import sys
from tests.test_graph_store import add, record
from ontology.store import GraphStore
store = GraphStore(sys.argv[1])
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    add(store, "shared", [record(i)])
"""


def test_two_processes_building_one_graph_keep_every_document(location):
    root = str(Path(__file__).resolve().parent.parent)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, location, str(a), str(a + 25)], cwd=root,
                              stderr=subprocess.PIPE, text=True) for a in (0, 25)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    store = GraphStore(location)
    with store.reader("shared") as r:
        assert r.documents() == 50
    assert store.load("shared").to_json()["sie_kg"]["records"][-1]["doc"] == "d049"
    # the same documents built by one writer: the same graph
    add(store, "single", [record(i) for i in range(50)])
    assert store.load("single").to_json()["nodes"] == store.load("shared").to_json()["nodes"]
    store.close()


READER = """
import json, sys
from ontology.store import GraphStore
store = GraphStore(sys.argv[1])
print(json.dumps([store.read_text("g"), [i.id for i in store.list()]]))
"""


def test_restart_keeps_everything(location):
    store = GraphStore(location)
    add(store, "g", [record(i) for i in range(8)])
    add(store, "h", [record(1)])
    expected = store.read_text("g")
    store.close()
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", READER, location], capture_output=True, text=True, check=True,
                         cwd=root)
    text, ids = json.loads(out.stdout)
    assert text == expected and ids == ["g", "h"]


def test_a_form_of_punctuation_only_is_stored(tmp_path):
    """A zero-shot model's span may be "." (no words once normalised): it is a form like another, not a crash."""
    store = GraphStore(tmp_path / "graphs")
    add(store, "g", [make_record("p", [[("city", "."), ("city", "Oslo")]]), record(1)])
    assert {d["label"] for _, d in store.load("g").graph.nodes(data=True) if d["kind"] == "entity"} >= {".", "Oslo"}
    store.close()


def test_old_json_graph_is_imported_once(tmp_path):
    records = [record(i) for i in range(6)]
    old = KnowledgeGraph()
    old.add(records)
    old.rebuild(vectors_for(records))
    folder = tmp_path / "graphs"
    folder.mkdir()
    (folder / "legacy.json").write_text(json.dumps(old.to_json()))
    store = GraphStore(folder)
    assert store.exists("legacy") and not (folder / "legacy.json").exists()
    assert (folder / "legacy.json.imported").exists()
    back = store.load("legacy")
    assert back.to_json()["nodes"] == old.to_json()["nodes"] and back.to_json()["edges"] == old.to_json()["edges"]
    store.close()
    (folder / "legacy.json.imported").rename(folder / "kept.json.imported")
    again = GraphStore(folder)  # opened again: nothing imported twice, the graph still there
    assert [i.id for i in again.list()] == ["legacy"]
    add(again, "legacy", [record(7)])  # and it takes new documents
    with again.reader("legacy") as r:
        assert r.documents() == 7
    again.close()


def test_bounds_evict_oldest_and_expired(tmp_path):
    store = GraphStore(tmp_path, max_graphs=2)
    for name in ("one", "two", "three"):
        add(store, name, [record(1)])
    assert [i.id for i in store.list()] == ["three", "two"]
    store.ttl_s = 0.0
    assert store.list() == [] and not store.exists("two")
    store.close()


def test_one_document_resolves_only_the_forms_it_touches(tmp_path, monkeypatch):
    """Incremental cost without a clock: adding a document resolves its own forms and the stored forms they could
    join, however large the graph is (here 400 other entities), and reads only the new forms' vectors."""
    import ontology.store as store_module

    sizes: list[int] = []
    real = store_module.resolve
    monkeypatch.setattr(store_module, "resolve",
                        lambda forms, *a, **k: sizes.append(len(forms)) or real(forms, *a, **k))

    def doc(i: int, names: list[tuple[str, str]]) -> DocRecord:
        text, mentions = "", []
        for k, (label, name) in enumerate(names):
            text += " and " if k else ""
            mentions.append(Mention(len(text), len(text) + len(name), name, label))
            text += name
        text += " met."
        return extract(ParsedDoc(f"u{i}", text, ((0, len(text)),), tuple(mentions)))

    store = GraphStore(tmp_path)
    big = [doc(i, [("PERSON", f"Person{i} Surname{i}"), ("ORG", f"Company{i} Holdings"), ("GPE", f"Town{i}")])
           for i in range(200)]
    add(store, "g", big[:100])
    add(store, "g", big[100:])
    sizes.clear()
    add(store, "g", [doc(999, [("PERSON", "Newcomer Person"), ("ORG", "Company7 Holdings"), ("GPE", "Town3")])])
    assert sizes and max(sizes) <= 6, sizes  # the document's 3 forms and the 2 stored forms it names again
    with store.reader("g") as r:
        assert len(r.entity_rows()) == 601
    store.close()


def test_sqlite_navigation_searches_indexes_not_the_graph(tmp_path):
    """Reading two entities' nodes and edges searches indexes by entity and form: no step walks every relation
    or mention of the graph (SQLite's planner did so without statistics; the store keeps them current)."""
    import re

    store = GraphStore(tmp_path / "graphs")
    people = [("PERSON", f"Person{i} Surname{i}") for i in range(60)]
    places = [("GPE", f"Town{i}") for i in range(60)]
    add(store, "g", [make_record(f"n{i}", [[people[i], places[i], people[(i + 1) % 60]]]) for i in range(60)])
    store.close()
    store = GraphStore(tmp_path / "graphs")  # a restart, as a server reading a graph would be
    seen: list[str] = []
    store.db.conn().set_trace_callback(seen.append)
    with store.reader("g") as r:
        ids = sorted(r.entity_rows())[:2]
        r.nodes(ids, evidence=True)
        r.edges(ids)
    store.db.conn().set_trace_callback(None)
    reads = [q for q in seen if q.lstrip().upper().startswith("SELECT") and ("rels" in q or "mentions" in q)]
    assert reads
    for q in reads:
        plan = [row[3] for row in store.db.all("EXPLAIN QUERY PLAN " + q)]
        walks = [step for step in plan if re.search(r"^SCAN (?!CONSTANT)|\(graph=\?\)$", step)]
        assert not walks, (q, plan)
    store.close()
