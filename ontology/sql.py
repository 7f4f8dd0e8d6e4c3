"""The two databases a graph store runs on, behind one small interface: SQLite (stdlib `sqlite3`, WAL, one file
in the data directory: the embedded default) and PostgreSQL (`psycopg` 3, for deployments whose replicas share
graphs). SQL is written once with `?` placeholders; PostgreSQL's `%s` is substituted here.

Each thread gets its own connection (the tools run store calls in worker threads). Transactions are explicit:
`write(graph_id)` opens one that holds the graph's write lock until commit (SQLite: `BEGIN IMMEDIATE`, the
database's single writer lock, waited for up to `busy_timeout`; PostgreSQL: `SELECT … FOR UPDATE` on the graph's
row, so writers of other graphs never wait), `read()` one that sees a single snapshot (SQLite WAL readers;
PostgreSQL REPEATABLE READ), so a reader never sees half of a build.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS graphs (id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL,
       updated DOUBLE PRECISION NOT NULL, bytes BIGINT NOT NULL DEFAULT 0, version BIGINT NOT NULL DEFAULT 0,
       taxonomy TEXT NOT NULL DEFAULT '{}', threshold DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS documents (graph TEXT NOT NULL, doc TEXT NOT NULL, record TEXT NOT NULL,
       bytes BIGINT NOT NULL, PRIMARY KEY (graph, doc))""",
    # a surface form: its mention count, embedding (float32 bytes; NULL for forms imported from a JSON graph),
    # the keys resolution looks candidates up by, and the entity it resolved to
    """CREATE TABLE IF NOT EXISTS forms (graph TEXT NOT NULL, label TEXT NOT NULL, text TEXT NOT NULL,
       count BIGINT NOT NULL, vector BYTEA, family TEXT NOT NULL, key TEXT NOT NULL, nkey TEXT NOT NULL,
       first TEXT NOT NULL, last TEXT NOT NULL, ini1 TEXT NOT NULL, ini2 TEXT NOT NULL, entity TEXT,
       PRIMARY KEY (graph, label, text))""",
    "CREATE INDEX IF NOT EXISTS forms_entity ON forms (graph, entity)",
    "CREATE INDEX IF NOT EXISTS forms_key ON forms (graph, key)",
    "CREATE INDEX IF NOT EXISTS forms_nkey ON forms (graph, nkey)",
    "CREATE INDEX IF NOT EXISTS forms_first ON forms (graph, first)",
    "CREATE INDEX IF NOT EXISTS forms_last ON forms (graph, last)",
    "CREATE INDEX IF NOT EXISTS forms_ini1 ON forms (graph, ini1)",
    "CREATE INDEX IF NOT EXISTS forms_ini2 ON forms (graph, ini2)",
    """CREATE TABLE IF NOT EXISTS entities (graph TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
       name TEXT NOT NULL, aliases TEXT NOT NULL, PRIMARY KEY (graph, id))""",
    """CREATE TABLE IF NOT EXISTS mentions (graph TEXT NOT NULL, doc TEXT NOT NULL, n INTEGER NOT NULL,
       label TEXT NOT NULL, text TEXT NOT NULL, start_char INTEGER NOT NULL, end_char INTEGER NOT NULL,
       sentence TEXT NOT NULL, PRIMARY KEY (graph, doc, n))""",
    "CREATE INDEX IF NOT EXISTS mentions_form ON mentions (graph, label, text)",
    # a relation between two surface forms in one document (the graph maps forms onto entities when read, so
    # a merge or a rename of an entity never rewrites relations)
    """CREATE TABLE IF NOT EXISTS rels (graph TEXT NOT NULL, doc TEXT NOT NULL, n INTEGER NOT NULL,
       src_label TEXT NOT NULL, src_text TEXT NOT NULL, tgt_label TEXT NOT NULL, tgt_text TEXT NOT NULL,
       rel TEXT NOT NULL, kind TEXT NOT NULL, sent_start INTEGER NOT NULL, evidence TEXT NOT NULL,
       PRIMARY KEY (graph, doc, n))""",
    "CREATE INDEX IF NOT EXISTS rels_src ON rels (graph, src_label, src_text)",
    "CREATE INDEX IF NOT EXISTS rels_tgt ON rels (graph, tgt_label, tgt_text)",
    # the edges those relations make under the current merges, with how many relations each has: kept in step
    # by every write, so counts, degrees and relation types are aggregates here, not a join over every relation
    """CREATE TABLE IF NOT EXISTS edges (graph TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL, rel TEXT NOT NULL,
       kind TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (graph, a, b, rel, kind))""",
    "CREATE INDEX IF NOT EXISTS edges_b ON edges (graph, b)",
    # per entity, the edges touching it (self-loops aside), and per relation its edges: kept with the edge table
    "CREATE TABLE IF NOT EXISTS degrees (graph TEXT NOT NULL, entity TEXT NOT NULL, n BIGINT NOT NULL, "
    "PRIMARY KEY (graph, entity))",
    "CREATE INDEX IF NOT EXISTS degrees_n ON degrees (graph, n)",
    "CREATE TABLE IF NOT EXISTS rel_counts (graph TEXT NOT NULL, rel TEXT NOT NULL, n BIGINT NOT NULL, "
    "PRIMARY KEY (graph, rel))",
    "CREATE INDEX IF NOT EXISTS forms_text ON forms (graph, text)",  # a text's vector under any label
]


class Database:
    """One database, a connection per thread, explicit transactions."""

    kind = "base"

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    # --- connections -----------------------------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    def conn(self) -> Any:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
            with self._lock:
                self._all.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing a connection another thread holds
                    pass
            self._all.clear()
        self._local = threading.local()

    # --- statements ------------------------------------------------------------------------------

    def sql(self, q: str) -> str:
        return q

    def execute(self, q: str, params: Sequence[Any] = ()) -> Any:
        return self.conn().execute(self.sql(q), tuple(params))

    def executemany(self, q: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn().cursor().executemany(self.sql(q), [tuple(r) for r in rows])

    def all(self, q: str, params: Sequence[Any] = ()) -> list[tuple]:
        return list(self.execute(q, params).fetchall())

    def one(self, q: str, params: Sequence[Any] = ()) -> tuple | None:
        return self.execute(q, params).fetchone()

    # --- transactions ----------------------------------------------------------------------------

    def _begin_write(self, graph_id: str, now: float, threshold: float) -> None:
        raise NotImplementedError

    def _begin_read(self) -> None:
        self.execute("BEGIN")

    @contextmanager
    def write(self, graph_id: str, now: float, threshold: float) -> Iterator[None]:
        """A transaction holding graph_id's write lock (its row is created if missing)."""
        self._begin_write(graph_id, now, threshold)
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[None]:
        self._begin_read()
        try:
            yield
        finally:
            self.execute("ROLLBACK")

    def refresh_statistics(self) -> None:
        """Give the query planner current table statistics (PostgreSQL's autovacuum keeps its own)."""

    @contextmanager
    def plain(self) -> Iterator[None]:
        """A short transaction without a graph lock (eviction, listing)."""
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")


class SQLiteDatabase(Database):
    kind = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = 120.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        c = self.conn()
        # switching to WAL needs the file to itself and does not wait on the busy handler: two processes opening
        # a new database at once retry until one has switched it (the mode then stays with the file)
        deadline = time.monotonic() + busy_timeout_s
        while c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                c.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.execute("BEGIN IMMEDIATE")
        for q in SCHEMA:
            c.execute(q.replace("BYTEA", "BLOB"))
        self.execute("COMMIT")

    def refresh_statistics(self) -> None:
        """ANALYZE on a bounded sample (about 1,000 rows per index: a few ms whatever the size). Without
        statistics SQLite's planner reads `graph = ?` as selective and scans a whole graph's relations or
        mentions to answer a navigation call about two entities (EXPLAIN QUERY PLAN)."""
        self.execute("PRAGMA analysis_limit=1000")
        self.execute("ANALYZE")

    def _connect(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        c.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        c.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a crash of the process, not of the OS
        return c

    def _begin_write(self, graph_id: str, now: float, threshold: float) -> None:
        self.execute("BEGIN IMMEDIATE")
        try:
            self.execute("INSERT INTO graphs (id, created, updated, threshold) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (id) DO NOTHING", (graph_id, now, now, threshold))
        except BaseException:
            self.execute("ROLLBACK")
            raise


class PostgresDatabase(Database):
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.conn()  # fail at start on a bad URL, not at the first build
        # DDL only on a database without the schema: even CREATE … IF NOT EXISTS takes table locks, and a replica
        # starting while another builds would deadlock with it
        if self._schema_ready():
            return
        self.execute("BEGIN")
        try:
            self.execute("SELECT pg_advisory_xact_lock(27270101)")  # two replicas starting create tables once
            if not self._schema_ready():
                for q in SCHEMA:
                    self.execute(q)
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def _schema_ready(self) -> bool:
        row = self.one("SELECT to_regclass('forms_text')")  # the last object SCHEMA creates
        return row is not None and row[0] is not None

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True)  # transactions are the explicit BEGIN/COMMIT here

    def sql(self, q: str) -> str:
        return q.replace("?", "%s")

    def _begin_read(self) -> None:
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _begin_write(self, graph_id: str, now: float, threshold: float) -> None:
        self.execute("BEGIN")
        try:
            self.execute("INSERT INTO graphs (id, created, updated, threshold) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (id) DO NOTHING", (graph_id, now, now, threshold))
            self.execute("SELECT id FROM graphs WHERE id = ? FOR UPDATE", (graph_id,))
        except BaseException:
            self.execute("ROLLBACK")
            raise


def open_database(location: Path | str) -> Database:
    """`postgresql://…` (or `postgres://…`) -> PostgreSQL; anything else is a directory for the SQLite file."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(text)
    return SQLiteDatabase(Path(location) / "graphs.sqlite3")
