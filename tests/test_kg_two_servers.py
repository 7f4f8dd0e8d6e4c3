"""Two `sie-tools serve` processes building one graph at once, over HTTP, keep every document: on one data directory
(SQLite) and on one PostgreSQL server (`--graph-store`). Each server gets its half of the documents in small calls,
both halves sent at the same time; then either server answers with all of them."""

from __future__ import annotations

import concurrent.futures
import httpx
import pytest

from ontology.store import GraphStore
from tests.pg_server import PostgresServer, pg_bin
from tests.test_kg_e2e import Server

pytestmark = pytest.mark.slow

DOCS = [{"id": f"d{i:02d}", "text": f"Person{i} Name{i} joined Company{i % 5} Group in Town{i % 7}. "
                                    f"Company{i % 5} Group acquired Firm{i} Labs."} for i in range(24)]


def _build(url: str, docs: list[dict]) -> None:
    with httpx.Client(timeout=300) as client:
        for b in range(0, len(docs), 3):
            r = client.post(f"{url}/v1/tools/build_ontology", json={"documents": docs[b:b + 3], "graph": "shared"})
            assert r.status_code == 200, r.text


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_two_servers_building_one_graph_keep_every_document(store, tmp_path):
    pg = None
    extra: list[str] = []
    if store == "postgresql":
        if pg_bin() is None:
            pytest.skip("PostgreSQL server binaries missing: scripts/install_postgres.sh installs them")
        pg = PostgresServer()
        extra = ["--graph-store", pg.database("shared")]
    servers = [Server(tmp_path / "data", tmp_path / f"server{k}.log", extra) for k in range(2)]
    try:
        for s in servers:
            s.start()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(_build, [s.url for s in servers], [DOCS[0::2], DOCS[1::2]]))
        for s in servers:
            r = httpx.post(f"{s.url}/v1/tools/build_ontology", json={"documents": DOCS[:1], "graph": "shared"},
                           timeout=300)  # d00 again: replaced, nothing added
            assert r.status_code == 200 and r.json()["documents"] == len(DOCS) and r.json()["added"] == 0, r.text
        store = GraphStore(extra[1] if extra else tmp_path / "data" / "graphs")  # what is stored, read directly
        assert sorted(store.load("shared").records) == [d["id"] for d in DOCS]
        store.close()
    finally:
        for s in servers:
            s.stop()
        if pg is not None:
            pg.stop()
