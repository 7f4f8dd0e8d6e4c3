"""The graph store: knowledge graphs in a database (ontology.sql: SQLite in the data directory by default,
PostgreSQL for shared deployments), built in transactions, resolved incrementally, read in bounded pieces.

What is stored (one row each, keyed by graph): a document's extraction record; each surface form with its
mention count, embedding and the entity it resolved to; each entity (type, name, aliases); each mention and
each relation between two surface forms. Edges are relations mapped onto entities when read, so merging two
entities or renaming one updates form rows, and the edge table: each edge with how many relations make it, kept in
step by every write (a build counts its documents' relations, uncounts a replaced document's, and moves the
relations of forms whose entity changed), so a build's summary is a few aggregates, not a join over the graph.

Guarantees
- A build (`add_documents`) is one transaction holding the graph's write lock: it merges into the graph as it
  is at that moment (two server processes building one graph both land: nothing is read before the lock and
  written after it), its limits are checked before the commit, and a refused, cancelled or failing build rolls
  back: the graph is exactly as it was, and the next build works. Readers see a snapshot: all of a build or
  none of it.
- Resolution is incremental: a new surface form is resolved against the stored forms it can merge with (the
  same key, an acronym's expansion, a person's name parts, the nearest stored vectors of its family above the
  threshold) and the entities those belong to, not against every form; names that share only a first word or
  a common last word ("… Group") are not candidates, and the names behind a stored short form (a surname, an
  acronym) are read only when such a form is stored. Vectors are stored, so a form is embedded once. The cost
  of adding a document does not grow with the graph beyond those nearest forms.
- Bounds: a graph over `max_bytes` (its documents' records and vectors) is refused; after a build, graphs idle
  for `ttl_s` are deleted, then the least recently written until at most `max_graphs` remain and they hold at
  most `max_bytes` together. The graph just written is never evicted.
- Old JSON graphs (`<dir>/<id>.json`, the store of earlier versions) are imported once when the store opens
  (their merges kept; their forms have no vectors) and renamed `<id>.json.imported`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ontology.graph import MAX_NODE_DOC_IDS, MAX_NODE_EVIDENCE, DocRecord, KnowledgeGraph, group_relation
from ontology.relations import CO_OCCURRENCE
from ontology.resolution import (
    DEFAULT_THRESHOLD,
    PARTICLES,
    Entity,
    Form,
    family,
    initials,
    is_acronym,
    normalize,
    particle_surname,
    resolve,
)
from ontology.sql import Database, open_database

GRAPH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CHUNK = 500  # ids per IN (…) list


class GraphNotFound(KeyError):
    pass


class GraphTooLarge(ValueError):
    pass


class BuildCancelled(Exception):
    """The build was cancelled before its commit: nothing of it was stored."""


def valid_id(graph_id: str) -> bool:
    return bool(GRAPH_ID.fullmatch(graph_id)) and ".." not in graph_id


@dataclass(frozen=True)
class GraphInfo:
    id: str
    bytes: int
    updated: float  # unix time of the last write
    version: int = 0


@dataclass(frozen=True)
class FormRow:
    label: str
    text: str
    count: int
    entity: str | None
    vector: np.ndarray | None


def _keys(label: str, text: str) -> tuple[str, str, str, str, str, str, str]:
    """family, key, nkey, first word, last word, and the two initials of a form (resolution's lookup keys)."""
    key = normalize(text, label)
    words = key.split()
    ini = sorted(initials(key)) + ["", ""]
    return (family(label), key, normalize(text), words[0] if len(words) > 1 else "",
            words[-1] if len(words) > 1 else "", ini[0], ini[1])


def _vec(blob: Any) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(bytes(blob), dtype=np.float32)


def _chunks(items: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _any_of(graph_id: str, columns: Sequence[str], keys: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """A WHERE clause (and its parameters) for rows of one graph matching any of `keys` on `columns`. The graph
    is in every branch, and the clause must not be ANDed with another `graph = ?`: then SQLite searches the
    index once per key; with one shared `graph = ?` its planner scans the whole graph instead (measured:
    EXPLAIN QUERY PLAN on a 2,900-entity graph)."""
    branch = "(" + " AND ".join(["graph = ?", *(f"{c} = ?" for c in columns)]) + ")"
    return " OR ".join([branch] * len(keys)), [x for k in keys for x in (graph_id, *k)]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class GraphStore:
    def __init__(self, root: Path | str, max_graphs: int = 100, max_bytes: int = 1 << 30, ttl_s: float = 30 * 86400,
                 cache_size: int = 4, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.location = root
        self.db: Database = open_database(root)
        self.max_graphs, self.max_bytes, self.ttl_s = max_graphs, max_bytes, ttl_s
        self.threshold = threshold
        self._cache: dict[str, tuple[int, KnowledgeGraph]] = {}  # id -> (version, materialised graph)
        self._names: dict[str, tuple[int, dict[str, list[str]]]] = {}  # id -> (version, nkey -> entity ids)
        self._vectors: dict[str, tuple[tuple, list[tuple[str, str, str]], np.ndarray]] = {}  # id -> state, forms
        self._tl = threading.local()  # per build (builds of different graphs may run at once in threads)
        self._cache_size = cache_size
        self._lock = threading.Lock()
        if self.db.kind == "sqlite":
            self._import_json(Path(root))
        self._count_old_graphs()
        self._analysed_bytes = -1  # the stored bytes when the planner's statistics were last refreshed
        self._refresh_statistics()

    def close(self) -> None:
        self.db.close()

    def _refresh_statistics(self) -> None:
        """Refresh the planner's statistics when the stored bytes have doubled since the last time (and at
        start): a bounded ANALYZE a logarithmic number of times as graphs grow, not one per build."""
        row = self.db.one("SELECT COALESCE(SUM(bytes), 0) FROM graphs")
        stored = int(row[0]) if row else 0
        if self._analysed_bytes < 0 or stored > 2 * max(self._analysed_bytes, 1 << 16):
            self.db.refresh_statistics()
            self._analysed_bytes = stored

    def _count_old_graphs(self) -> None:
        """Graphs written before the edge tables existed get them once."""
        for (gid,) in self.db.all("SELECT id FROM graphs g WHERE EXISTS (SELECT 1 FROM rels r WHERE r.graph = g.id) "
                                  "AND NOT EXISTS (SELECT 1 FROM rel_counts e WHERE e.graph = g.id)"):
            with self.db.write(gid, time.time(), self.threshold):
                self._recount_edges(gid)

    # --- listing ---------------------------------------------------------------------------------

    def _check(self, graph_id: str) -> None:
        if not valid_id(graph_id):
            raise GraphNotFound(f"invalid graph id {graph_id!r}: letters, digits, '_', '-', '.'; at most 64")

    def list(self) -> list[GraphInfo]:
        rows = self.db.all("SELECT id, bytes, updated, version FROM graphs WHERE version > 0 AND updated >= ? "
                           "ORDER BY id", (time.time() - self.ttl_s,))
        return [GraphInfo(r[0], int(r[1]), float(r[2]), int(r[3])) for r in rows]

    def info(self, graph_id: str) -> GraphInfo | None:
        try:
            self._check(graph_id)
        except GraphNotFound:
            return None
        r = self.db.one("SELECT id, bytes, updated, version FROM graphs WHERE id = ? AND version > 0", (graph_id,))
        if r is None or time.time() - float(r[2]) > self.ttl_s:
            return None
        return GraphInfo(r[0], int(r[1]), float(r[2]), int(r[3]))

    def exists(self, graph_id: str) -> bool:
        return self.info(graph_id) is not None

    def _info_or_raise(self, graph_id: str) -> GraphInfo:
        self._check(graph_id)
        info = self.info(graph_id)
        if info is None:
            raise GraphNotFound(f"no graph {graph_id!r}")
        return info

    # --- building --------------------------------------------------------------------------------

    def missing_vectors(self, graph_id: str, texts: Iterable[str]) -> list[str]:
        """The texts with no stored vector in this graph: what a build must embed (each form is embedded once)."""
        wanted = sorted(set(texts))
        if not valid_id(graph_id):
            return wanted
        have: set[str] = set()
        for part in _chunks(wanted):
            have.update(r[0] for r in self.db.all(
                "SELECT DISTINCT text FROM forms WHERE graph = ? AND vector IS NOT NULL AND text IN "
                f"({_marks(len(part))})",
                (graph_id, *part)))
        return [t for t in wanted if t not in have]

    def add_documents(self, graph_id: str, records: Sequence[DocRecord],
                      vectors: Mapping[str, Sequence[float]] | None = None,
                      taxonomy: Mapping[str, list[str]] | None = None,
                      checkpoint: Callable[[], None] | None = None) -> tuple[int, int]:
        """Add (or replace, by doc id) documents in one transaction; returns (added, replaced).

        `vectors`: surface text -> embedding for the new forms (`missing_vectors`); `taxonomy`: entity type ->
        category path, merged into the graph's; `checkpoint`: called just before the commit, it raises to abort
        (a cancelled build raises BuildCancelled there). Raises GraphTooLarge (nothing stored) past max_bytes."""
        self._check(graph_id)
        now = time.time()
        db = self.db
        with db.write(graph_id, now, self.threshold):
            row = db.one("SELECT bytes, version, taxonomy, threshold, updated, created FROM graphs WHERE id = ?",
                         (graph_id,))
            assert row is not None
            size, version, threshold = int(row[0]), int(row[1]), float(row[3])
            if version > 0 and now - float(row[4]) > self.ttl_s:  # expired: a new graph under the old name
                self._delete_rows(graph_id)
                size, version = 0, 0
            self._tl.version = (float(row[5]), version)  # which state of the graph this build starts from
            self._tl.pending = None
            self._tl.edges = Counter()  # edge key -> change in its relation count, applied before the commit
            self._tl.new_docs = set()  # documents written by this build: their relations are counted once, last
            delta: Counter[tuple[str, str]] = Counter()
            replaced = 0
            for r in records:
                old = db.one("SELECT record, bytes FROM documents WHERE graph = ? AND doc = ?", (graph_id, r.doc_id))
                if old is not None:
                    replaced += 1
                    size -= int(old[1])
                    for m in json.loads(old[0])["mentions"]:
                        delta[(m[0], m[1])] -= 1
                    if r.doc_id not in self._tl.new_docs:
                        self._count_edges(graph_id, -1, "r.doc = ?", (r.doc_id,))
                    for table in ("documents", "mentions", "rels"):
                        db.execute(f"DELETE FROM {table} WHERE graph = ? AND doc = ?", (graph_id, r.doc_id))
                for m in r.mentions:
                    delta[(m[0], m[1])] += 1
                size += self._insert_record(graph_id, r)
                self._tl.new_docs.add(r.doc_id)
            size += self._apply_forms(graph_id, delta, vectors or {}, threshold)
            for part in _chunks(sorted(self._tl.new_docs)):
                self._count_edges(graph_id, +1, f"r.doc IN ({_marks(len(part))})", part)
            self._apply_edge_counts(graph_id)
            tax = json.loads(row[2])
            tax.update(taxonomy or {})
            if size > self.max_bytes:
                raise GraphTooLarge(f"graph {graph_id!r} would take {size} bytes; the store holds at most "
                                    f"{self.max_bytes}: split the documents over several graphs")
            if checkpoint is not None:
                checkpoint()
            db.execute("UPDATE graphs SET bytes = ?, version = ?, updated = ?, taxonomy = ? WHERE id = ?",
                       (size, version + 1, now, json.dumps(tax, sort_keys=True), graph_id))
        pending = self._tl.pending
        if pending is None:  # no new form: the cached vectors are still all of them
            with self._lock:
                hit = self._vectors.get(graph_id)
            if hit is not None and hit[0] == self._tl.version:
                pending = (graph_id, (hit[0][0], hit[0][1] + 1), hit[1], hit[2])
        if pending is not None:
            with self._lock:
                self._vectors[graph_id] = (pending[1], pending[2], pending[3])
                while len(self._vectors) > self._cache_size:
                    self._vectors.pop(next(iter(self._vectors)))
        self._evict(keep=graph_id)
        self._refresh_statistics()
        return len(records) - replaced, replaced

    def _insert_record(self, graph_id: str, r: DocRecord) -> int:
        text = json.dumps(r.as_json(), ensure_ascii=False, separators=(",", ":"))
        self.db.execute("INSERT INTO documents (graph, doc, record, bytes) VALUES (?, ?, ?, ?)",
                        (graph_id, r.doc_id, text, len(text.encode())))
        self.db.executemany(
            "INSERT INTO mentions (graph, doc, n, label, text, start_char, end_char, sentence) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(graph_id, r.doc_id, i, m[0], m[1], m[2], m[3], r.sentences[m[4]][2]) for i, m in enumerate(r.mentions)])
        self.db.executemany(
            "INSERT INTO rels (graph, doc, n, src_label, src_text, tgt_label, tgt_text, rel, kind, sent_start, "
            "evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(graph_id, r.doc_id, i, sl, st, tl, tt, rel, kind, ev["sentence_start"],
              json.dumps(ev, ensure_ascii=False, separators=(",", ":")))
             for i, (sl, st, tl, tt, rel, kind, ev) in enumerate(r.relations)])
        return len(text.encode())

    def _forms(self, where: str, params: Sequence[Any]) -> list[FormRow]:
        return [FormRow(r[0], r[1], int(r[2]), r[3], _vec(r[4])) for r in self.db.all(
            f"SELECT label, text, count, entity, vector FROM forms WHERE {where}", params)]

    def _apply_forms(self, graph_id: str, delta: Mapping[tuple[str, str], int],
                     vectors: Mapping[str, Sequence[float]], threshold: float) -> int:
        """Apply mention-count changes to the forms and re-resolve the neighbourhood they touch; returns the
        bytes added (vectors of new forms)."""
        db = self.db
        added_bytes = 0
        new_forms: list[tuple[str, str]] = []
        touched_entities: set[str] = set()
        for (label, text), d in sorted(delta.items()):
            if d == 0:
                continue
            row = db.one("SELECT count, entity FROM forms WHERE graph = ? AND label = ? AND text = ?",
                         (graph_id, label, text))
            if row is None:
                if d < 0:
                    continue
                v = vectors.get(text)
                blob = None if v is None else np.asarray(v, dtype=np.float32).tobytes()
                if blob is None:  # the same text under another label may have one
                    got = db.one("SELECT vector FROM forms WHERE graph = ? AND text = ? AND vector IS NOT NULL",
                                 (graph_id, text))
                    blob = None if got is None else bytes(got[0])
                added_bytes += len(blob or b"") + len(text.encode())
                db.execute("INSERT INTO forms (graph, label, text, count, vector, family, key, nkey, first, last, "
                           "ini1, ini2, entity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                           (graph_id, label, text, d, blob, *_keys(label, text)))
                new_forms.append((label, text))
            else:
                count, entity = int(row[0]) + d, row[1]
                if entity is not None:
                    touched_entities.add(entity)
                if count <= 0:
                    db.execute("DELETE FROM forms WHERE graph = ? AND label = ? AND text = ?", (graph_id, label, text))
                else:
                    db.execute("UPDATE forms SET count = ? WHERE graph = ? AND label = ? AND text = ?",
                               (count, graph_id, label, text))
        if new_forms or touched_entities:
            self._resolve_around(graph_id, new_forms, touched_entities, threshold)
        return added_bytes

    def _candidates(self, graph_id: str, label: str, text: str, vector: np.ndarray | None,
                    matrix: tuple[list[tuple[str, str, str]], np.ndarray] | None) -> set[tuple[str, str]]:
        """Stored forms a new form could merge with, or whose merge it could change (see the module docstring)."""
        fam, key, _, _, last, ini1, ini2 = _keys(label, text)
        found: set[tuple[str, str]] = set()

        def add(where: str, params: Sequence[Any]) -> None:
            found.update((r[0], r[1]) for r in self.db.all(
                f"SELECT label, text FROM forms WHERE graph = ? AND ({where})", (graph_id, *params)))

        add("key = ?", (key,))
        words = key.split()
        if len(words) == 1:  # an acronym's expansions, the long names a surname could be (steps 2 and 3)
            add("ini1 = ?", (key,))
            add("ini2 = ?", (key,))
            add("last = ?", (key,))
        elif words:  # (a form of punctuation only, e.g. a zero-shot model's ".", has no words: its key is all)
            # stored short forms this name could take as aliases: its acronyms, surname, particle surname. A short
            # form's merge depends on every name it could stand for (one target or none), so when one is stored,
            # or this form is itself a particle surname, the names sharing its initials or surname come too;
            # names sharing only a first word or a common last word ("Group") never change a merge.
            shorts = sorted(k for k in {ini1, ini2, last, particle_surname(key)} if k)
            stored = {r[0] for r in self.db.all(f"SELECT DISTINCT key FROM forms WHERE graph = ? AND key IN "
                                               f"({_marks(len(shorts))})", (graph_id, *shorts))}
            if stored:
                add(f"key IN ({_marks(len(stored))})", sorted(stored))
            for short in sorted(stored & {ini1, ini2}):
                add("ini1 = ?", (short,))
                add("ini2 = ?", (short,))
            if stored - {ini1, ini2} or words[0] in PARTICLES:
                add("last = ?", (last,))
        if vector is not None and matrix is not None and len(matrix[0]):
            keys, m = matrix
            q = vector / max(float(np.linalg.norm(vector)), 1e-12)
            for i in np.nonzero(m @ q >= self.threshold - 1e-6)[0].tolist():
                if keys[i][0] == fam:
                    found.add((keys[i][1], keys[i][2]))
        return found

    def _family_matrix(self, graph_id: str, version: tuple[float, int], new_forms: list[tuple[str, str]]
                       ) -> tuple[list[tuple[str, str, str]], np.ndarray] | None:
        """(family, label, text) and unit vectors of the graph's stored forms, the new ones included. Kept in this
        process per graph version: a build that finds the version it left reads only its new forms' vectors
        (another process's build changes the version, and the matrix is read again)."""
        with self._lock:
            hit = self._vectors.get(graph_id)
        if hit is not None and hit[0] == version:
            keys, m = list(hit[1]), hit[2]
            rows = []
            for part in _chunks(new_forms, 200):
                cond, params = _any_of(graph_id, ("label", "text"), part)
                rows += self.db.all(f"SELECT family, label, text, vector FROM forms WHERE ({cond}) AND "
                                    "vector IS NOT NULL", params)
        else:
            keys, m = [], np.zeros((0, 0), dtype=np.float32)
            rows = self.db.all("SELECT family, label, text, vector FROM forms WHERE graph = ? AND vector IS NOT NULL "
                               "ORDER BY label, text", (graph_id,))
        if rows:
            add = np.stack([np.frombuffer(bytes(r[3]), dtype=np.float32) for r in rows])
            add = add / np.maximum(np.linalg.norm(add, axis=1, keepdims=True), 1e-12)
            m = add if not len(keys) or m.shape[1] != add.shape[1] else np.concatenate([m, add])
            keys = ([] if m is add else keys) + [(r[0], r[1], r[2]) for r in rows]
        self._tl.pending = (graph_id, (version[0], version[1] + 1), keys, m)  # kept once this build commits
        return (keys, m) if keys else None

    def _resolve_around(self, graph_id: str, new_forms: list[tuple[str, str]], touched: set[str],
                        threshold: float) -> None:
        db = self.db
        matrix = self._family_matrix(graph_id, self._tl.version, new_forms) if new_forms else None
        related: set[tuple[str, str]] = set(new_forms)
        for label, text in new_forms:
            got = db.one("SELECT vector FROM forms WHERE graph = ? AND label = ? AND text = ?", (graph_id, label, text))
            related |= self._candidates(graph_id, label, text, _vec(got[0]) if got else None, matrix)
        entities = set(touched)
        pairs = sorted(related)
        for part in _chunks(pairs, 200):
            cond, params = _any_of(graph_id, ("label", "text"), part)
            entities.update(r[0] for r in db.all(f"SELECT entity FROM forms WHERE ({cond}) AND entity IS NOT NULL",
                                                 params))
        rows: dict[tuple[str, str], FormRow] = {}
        ent_list = sorted(entities)
        for part in _chunks(ent_list):
            for f in self._forms(f"graph = ? AND entity IN ({_marks(len(part))})", (graph_id, *part)):
                rows[(f.label, f.text)] = f
        for part in _chunks(pairs, 200):
            for f in self._forms(*_any_of(graph_id, ("label", "text"), part)):
                rows[(f.label, f.text)] = f
        forms = [Form(f.text, f.label, f.count) for f in rows.values()]
        vecs: dict[str, Any] = {f.text: f.vector for f in rows.values() if f.vector is not None}
        resolved = resolve(forms, vecs, threshold)
        # only what changed is written (a resolve set holds the whole neighbourhood, most of it as it was)
        by_id = {e.id: e for e in resolved.values()}
        stored: dict[str, tuple] = {}
        for part in _chunks(sorted(set(by_id) | set(ent_list))):
            stored.update((r[0], tuple(r[1:])) for r in db.all(
                f"SELECT id, type, name, aliases FROM entities WHERE graph = ? AND id IN ({_marks(len(part))})",
                (graph_id, *part)))
        changed = [(graph_id, e.id, e.type, e.name, json.dumps(e.aliases, ensure_ascii=False))
                   for e in sorted(by_id.values(), key=lambda e: e.id)]
        changed = [row for row in changed if stored.get(row[1]) != row[2:]]
        db.executemany("INSERT INTO entities (graph, id, type, name, aliases) VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                       "(graph, id) DO UPDATE SET type = excluded.type, name = excluded.name, "
                       "aliases = excluded.aliases", changed)
        moved = sorted(k for k, e in resolved.items() if rows[k].entity not in (None, e.id))
        counted = self._counted_rels(graph_id, moved)
        self._count_rels(graph_id, -1, counted)  # under the old entities …
        db.executemany("UPDATE forms SET entity = ? WHERE graph = ? AND label = ? AND text = ?",
                       [(e.id, graph_id, label, text) for (label, text), e in sorted(resolved.items())
                        if rows[(label, text)].entity != e.id])  # moved, or new (None)
        self._count_rels(graph_id, +1, counted)  # … and the new ones
        # an entity left without forms (its last mention's document was replaced) goes
        for part in _chunks(ent_list):
            db.execute(f"DELETE FROM entities WHERE graph = ? AND id IN ({_marks(len(part))}) AND NOT EXISTS "
                       "(SELECT 1 FROM forms f WHERE f.graph = entities.graph AND f.entity = entities.id)",
                       (graph_id, *part))

    # --- the edge table: relations counted under the current merges --------------------------------

    def _count_edges(self, graph_id: str, sign: int, where: str, params: Sequence[Any]) -> None:
        """Add sign x the relations matching `where` (over `rels r`) to this build's edge changes, each under the
        entities its two forms resolve to now."""
        rows = self.db.all(
            "SELECT fa.entity, fb.entity, r.rel, r.kind, COUNT(*) FROM rels r JOIN forms fa ON fa.graph = r.graph "
            "AND fa.label = r.src_label AND fa.text = r.src_text JOIN forms fb ON fb.graph = r.graph AND "
            f"fb.label = r.tgt_label AND fb.text = r.tgt_text WHERE r.graph = ? AND ({where}) "
            "GROUP BY fa.entity, fb.entity, r.rel, r.kind", (graph_id, *params))
        changes: Counter = self._tl.edges
        for a, b, rel, kind, n in rows:
            if a is None or b is None:
                continue
            if kind == CO_OCCURRENCE and a > b:  # one edge per pair, as edge_key has it
                a, b = b, a
            changes[(a, b, rel, kind)] += sign * int(n)

    def _counted_rels(self, graph_id: str, forms: Sequence[tuple[str, str]]) -> list[tuple[str, int]]:
        """(doc, n) of the relations touching `forms` that are already counted (not this build's documents)."""
        found: set[tuple[str, int]] = set()
        for part in _chunks(forms, 100):
            for end in ("src", "tgt"):
                cond, params = _any_of(graph_id, (f"{end}_label", f"{end}_text"), part)
                found.update((d, int(n)) for d, n in self.db.all(f"SELECT doc, n FROM rels WHERE {cond}", params))
        return sorted(k for k in found if k[0] not in self._tl.new_docs)

    def _count_rels(self, graph_id: str, sign: int, keys: Sequence[tuple[str, int]]) -> None:
        for part in _chunks(keys, 200):
            self._count_edges(graph_id, sign, " OR ".join(["(r.doc = ? AND r.n = ?)"] * len(part)),
                              [x for k in part for x in k])

    def _apply_edge_counts(self, graph_id: str) -> None:
        """Write this build's edge changes; an edge that appears or goes changes its ends' degrees and its
        relation's count (both read by the build summary without scanning the edges)."""
        db = self.db
        changes: Counter = self._tl.edges
        keys = sorted(k for k, n in changes.items() if n)
        before: dict[tuple, int] = {}
        for part in _chunks(keys, 100):
            cond = " OR ".join(["(a = ? AND b = ? AND rel = ? AND kind = ?)"] * len(part))
            before.update(((a, b, rel, kind), int(n)) for a, b, rel, kind, n in db.all(
                f"SELECT a, b, rel, kind, n FROM edges WHERE graph = ? AND ({cond})",
                (graph_id, *[x for k in part for x in k])))
        degrees: Counter[str] = Counter()
        relations: Counter[str] = Counter()
        for key in keys:
            old = before.get(key, 0)
            if (old > 0) != (old + changes[key] > 0) and key[0] != key[1]:
                step = 1 if old <= 0 else -1
                degrees[key[0]] += step
                degrees[key[1]] += step
                relations[key[2]] += step
        db.executemany("INSERT INTO edges (graph, a, b, rel, kind, n) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                       "(graph, a, b, rel, kind) DO UPDATE SET n = edges.n + excluded.n",
                       [(graph_id, *k, int(changes[k])) for k in keys])
        db.executemany("DELETE FROM edges WHERE graph = ? AND a = ? AND b = ? AND rel = ? AND kind = ? AND n <= 0",
                       [(graph_id, *k) for k in keys if changes[k] < 0])
        for table, column, delta in (("degrees", "entity", degrees), ("rel_counts", "rel", relations)):
            rows = [(graph_id, k, n) for k, n in sorted(delta.items()) if n]
            db.executemany(f"INSERT INTO {table} (graph, {column}, n) VALUES (?, ?, ?) ON CONFLICT (graph, {column}) "
                           f"DO UPDATE SET n = {table}.n + excluded.n", rows)
            db.executemany(f"DELETE FROM {table} WHERE graph = ? AND {column} = ? AND n <= 0",
                           [r[:2] for r in rows if r[2] < 0])
        changes.clear()

    def _recount_edges(self, graph_id: str) -> None:
        """The whole edge table of one graph from its relations (a graph written whole, or a database from
        before the table existed)."""
        for table in ("edges", "degrees", "rel_counts"):
            self.db.execute(f"DELETE FROM {table} WHERE graph = ?", (graph_id,))
        self._tl.edges = Counter()
        self._count_edges(graph_id, +1, "1 = 1", ())
        self._apply_edge_counts(graph_id)

    def save(self, graph_id: str, kg: KnowledgeGraph) -> GraphInfo:
        """Replace a graph with `kg` (its records, and its merges as its derived graph has them): one transaction."""
        self._check(graph_id)
        now = time.time()
        with self.db.write(graph_id, now, kg.threshold):
            self._delete_rows(graph_id)
            self._write_whole(graph_id, kg, now)
        with self._lock:
            self._vectors.pop(graph_id, None)
        self._evict(keep=graph_id)
        info = self.info(graph_id)
        assert info is not None
        return info

    def _write_whole(self, graph_id: str, kg: KnowledgeGraph, now: float) -> None:
        db = self.db
        size = sum(self._insert_record(graph_id, kg.records[d]) for d in sorted(kg.records))
        assign = kg.assignment()
        counts = Counter((m[0], m[1]) for r in kg.records.values() for m in r.mentions)
        db.executemany("INSERT INTO forms (graph, label, text, count, vector, family, key, nkey, first, last, ini1, "
                       "ini2, entity) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(graph_id, label, text, n, *_keys(label, text), assign.get((label, text)))
                        for (label, text), n in sorted(counts.items())])
        for n in kg.entity_ids():
            d = kg.graph.nodes[n]
            db.execute("INSERT INTO entities (graph, id, type, name, aliases) VALUES (?, ?, ?, ?, ?)",
                       (graph_id, n, d["type"], d["label"], json.dumps(d["aliases"], ensure_ascii=False)))
        if size > self.max_bytes:
            raise GraphTooLarge(f"graph {graph_id!r} would take {size} bytes; the store holds at most "
                                f"{self.max_bytes}: split the documents over several graphs")
        self._recount_edges(graph_id)
        db.execute("UPDATE graphs SET bytes = ?, version = version + 1, updated = ?, taxonomy = ?, threshold = ? "
                   "WHERE id = ?", (size, now, json.dumps(kg.taxonomy, sort_keys=True), kg.threshold, graph_id))

    def _delete_rows(self, graph_id: str) -> None:
        for table in ("documents", "forms", "entities", "mentions", "rels", "edges", "degrees", "rel_counts"):
            self.db.execute(f"DELETE FROM {table} WHERE graph = ?", (graph_id,))

    def delete(self, graph_id: str) -> None:
        self._check(graph_id)
        with self.db.write(graph_id, time.time(), self.threshold):
            self._delete_rows(graph_id)
            self.db.execute("DELETE FROM graphs WHERE id = ?", (graph_id,))
        with self._lock:
            self._cache.pop(graph_id, None)
            self._names.pop(graph_id, None)
            self._vectors.pop(graph_id, None)

    def _evict(self, keep: str) -> None:
        now = time.time()
        rows = self.db.all("SELECT id, bytes, updated FROM graphs WHERE version > 0")
        infos = []
        for gid, size, updated in rows:
            if now - float(updated) > self.ttl_s and gid != keep:
                self.delete(gid)
            else:
                infos.append((gid == keep, float(updated), gid, int(size)))
        infos.sort()  # oldest first, the one just written last
        total = sum(i[3] for i in infos)
        while infos and (len(infos) > self.max_graphs or total > self.max_bytes) and infos[0][2] != keep:
            victim = infos.pop(0)
            total -= victim[3]
            self.delete(victim[2])

    def _import_json(self, root: Path) -> None:
        """Graphs of the JSON-file store: imported once (their merges kept), then renamed *.json.imported."""
        if not root.is_dir():
            return
        for p in sorted(root.glob("*.json")):
            if not valid_id(p.stem):
                continue
            try:
                kg = KnowledgeGraph.from_json(json.loads(p.read_text(encoding="utf-8")))
            except (ValueError, KeyError, OSError):
                continue  # not one of ours: left alone
            mtime = p.stat().st_mtime
            with self.db.write(p.stem, mtime, kg.threshold):
                present = self.db.one("SELECT version FROM graphs WHERE id = ?", (p.stem,))
                if present is not None and int(present[0]) == 0:  # another process may have imported it
                    self._write_whole(p.stem, kg, mtime)
            p.rename(p.with_name(p.name + ".imported"))

    # --- reading ---------------------------------------------------------------------------------

    def load(self, graph_id: str) -> KnowledgeGraph:
        """The whole graph, materialised (exports, the graph resource, the HTML view); cached per version.
        The navigation tools read bounded pieces instead (`reader`)."""
        with self.db.read():
            info = self._info_or_raise(graph_id)
            with self._lock:
                hit = self._cache.get(graph_id)
                if hit is not None and hit[0] == info.version:
                    return hit[1]
            row = self.db.one("SELECT taxonomy, threshold FROM graphs WHERE id = ?", (graph_id,))
            assert row is not None
            records = {r[0]: DocRecord.from_json(json.loads(r[1])) for r in self.db.all(
                "SELECT doc, record FROM documents WHERE graph = ? ORDER BY doc", (graph_id,))}
            ents = {r[0]: (r[1], r[2], json.loads(r[3])) for r in self.db.all(
                "SELECT id, type, name, aliases FROM entities WHERE graph = ?", (graph_id,))}
            forms = self.db.all("SELECT label, text, count, entity FROM forms WHERE graph = ?", (graph_id,))
        by_entity: dict[str, list[Form]] = defaultdict(list)
        for label, text, count, entity in forms:
            by_entity[entity].append(Form(text, label, int(count)))
        entities = {eid: Entity(eid, t, name, aliases, sorted(by_entity.get(eid, [])))
                    for eid, (t, name, aliases) in ents.items()}
        resolved = {}
        for label, text, _, entity in forms:
            e = entities.get(entity) or Entity(entity or f"{label}:{text}", label, text, [], [Form(text, label)])
            resolved[(label, text)] = e
        kg = KnowledgeGraph(records=records, taxonomy=json.loads(row[0]), threshold=float(row[1]))
        kg.rebuild(resolved=resolved)
        with self._lock:
            self._cache[graph_id] = (info.version, kg)
            while len(self._cache) > self._cache_size:
                self._cache.pop(next(iter(self._cache)))
        return kg

    def read_text(self, graph_id: str) -> str:
        """The graph as node-link JSON (the MCP resource)."""
        return json.dumps(self.load(graph_id).to_json(), ensure_ascii=False, separators=(",", ":"))

    def reader(self, graph_id: str) -> GraphReader:
        return GraphReader(self, graph_id)


class GraphReader:
    """Bounded reads of one graph in one snapshot: use as a context manager (`with store.reader(id) as r`)."""

    def __init__(self, store: GraphStore, graph_id: str) -> None:
        self.store, self.graph_id, self.db = store, graph_id, store.db
        self._ctx: Any = None
        self.info: GraphInfo | None = None

    def __enter__(self) -> GraphReader:
        self._ctx = self.db.read()
        self._ctx.__enter__()
        try:
            self.info = self.store._info_or_raise(self.graph_id)
        except BaseException:
            self._ctx.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)

    # names

    def names(self) -> dict[str, list[str]]:
        """Normalised name or alias -> entity ids (cached per graph version)."""
        assert self.info is not None
        with self.store._lock:
            hit = self.store._names.get(self.graph_id)
            if hit is not None and hit[0] == self.info.version:
                return hit[1]
        out: dict[str, set[str]] = defaultdict(set)
        for nkey, entity in self.db.all("SELECT nkey, entity FROM forms WHERE graph = ? AND entity IS NOT NULL",
                                        (self.graph_id,)):
            out[nkey].add(entity)
        for eid, name in self.db.all("SELECT id, name FROM entities WHERE graph = ?", (self.graph_id,)):
            out[normalize(name)].add(eid)
        names = {k: sorted(v) for k, v in out.items()}
        with self.store._lock:
            self.store._names[self.graph_id] = (self.info.version, names)
        return names

    # nodes

    def nodes(self, ids: Iterable[str], evidence: bool = False) -> dict[str, dict[str, Any]]:
        """Entity id -> the node attributes of the graph (kind, label, type, aliases, mentions, documents …)."""
        ids = sorted(set(ids))
        out: dict[str, dict[str, Any]] = {}
        for part in _chunks(ids):
            marks = _marks(len(part))
            for eid, etype, name, aliases in self.db.all(
                    f"SELECT id, type, name, aliases FROM entities WHERE graph = ? AND id IN ({marks})",
                    (self.graph_id, *part)):
                out[eid] = {"kind": "entity", "label": name, "type": etype, "aliases": json.loads(aliases),
                            "mentions": 0, "documents": 0, "doc_ids": [], "evidence": []}
            for eid, n in self.db.all(f"SELECT entity, SUM(count) FROM forms WHERE graph = ? AND entity IN ({marks}) "
                                      "GROUP BY entity", (self.graph_id, *part)):
                if eid in out:
                    out[eid]["mentions"] = int(n)
            docs: dict[str, set[str]] = defaultdict(set)
            rows = self.db.all(
                "SELECT f.entity, m.doc, m.sentence, m.start_char, m.end_char FROM forms f JOIN mentions m ON "
                "m.graph = f.graph AND m.label = f.label AND m.text = f.text "
                f"WHERE f.graph = ? AND f.entity IN ({marks}) ORDER BY m.doc, m.n", (self.graph_id, *part))
            for eid, doc, sentence, start, end in rows:
                if eid not in out:
                    continue
                docs[eid].add(doc)
                if evidence and len(out[eid]["evidence"]) < MAX_NODE_EVIDENCE:
                    out[eid]["evidence"].append({"doc": doc, "sentence": sentence, "start": start, "end": end})
            for eid, ds in docs.items():
                out[eid]["documents"] = len(ds)
                out[eid]["doc_ids"] = sorted(ds)[:MAX_NODE_DOC_IDS]
        return out

    # edges

    def edges(self, ids: Iterable[str], relation: str | None = None, among: bool = False
              ) -> tuple[dict[tuple[str, str, str], dict[tuple, dict]], dict[tuple[str, str, str], str]]:
        """The relation edges touching `ids` (or only those among them): (grouped evidence, kinds), the shape
        `ontology.graph.add_edges` takes."""
        ids = sorted(set(ids))
        rows: dict[tuple[str, int], tuple] = {}
        rel_cond = "" if relation is None else " AND r.rel = ?"
        rel_par: tuple = () if relation is None else (relation,)
        for part in _chunks(ids):
            marks = _marks(len(part))
            for end_a, end_b in (("src", "tgt"), ("tgt", "src")):
                q = (f"SELECT r.doc, r.n, fa.entity, fb.entity, r.rel, r.kind, r.evidence, '{end_a}' FROM forms fa "
                     f"JOIN rels r ON r.graph = fa.graph AND r.{end_a}_label = fa.label AND r.{end_a}_text = fa.text "
                     f"JOIN forms fb ON fb.graph = r.graph AND fb.label = r.{end_b}_label AND fb.text = r.{end_b}_text "
                     f"WHERE fa.graph = ? AND fa.entity IN ({marks}){rel_cond}")
                for doc, n, ea, eb, rel, kind, ev, end in self.db.all(q, (self.graph_id, *part, *rel_par)):
                    if among and eb not in ids:
                        continue
                    src, tgt = (ea, eb) if end == "src" else (eb, ea)
                    rows[(doc, int(n))] = (src, tgt, rel, kind, ev)
        grouped: dict[tuple[str, str, str], dict[tuple, dict]] = {}
        kinds: dict[tuple[str, str, str], str] = {}
        for key in sorted(rows):
            src, tgt, rel, kind, ev = rows[key]
            if src is None or tgt is None:
                continue
            group_relation(grouped, kinds, src, tgt, rel, kind, json.loads(ev))
        return grouped, kinds

    def edge_keys(self) -> set[tuple[str, str, str, str]]:
        """Every relation edge of the graph as (source id, target id, relation, kind)."""
        return {(a, b, rel, kind) for a, b, rel, kind in self.db.all(
            "SELECT a, b, rel, kind FROM edges WHERE graph = ? AND a <> b", (self.graph_id,))}

    def entity_rows(self, ids: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
        """Entity id -> (type, name), for `ids` (every entity without)."""
        if ids is None:
            return {r[0]: (r[1], r[2]) for r in self.db.all("SELECT id, type, name FROM entities WHERE graph = ?",
                                                             (self.graph_id,))}
        out: dict[str, tuple[str, str]] = {}
        for part in _chunks(sorted(set(ids))):
            out.update((r[0], (r[1], r[2])) for r in self.db.all(
                f"SELECT id, type, name FROM entities WHERE graph = ? AND id IN ({_marks(len(part))})",
                (self.graph_id, *part)))
        return out

    def mentions(self, ids: Iterable[str] | None = None) -> dict[str, int]:
        """Entity id -> mentions, for `ids` (every entity without)."""
        if ids is None:
            return {r[0]: int(r[1]) for r in self.db.all(
                "SELECT entity, SUM(count) FROM forms WHERE graph = ? AND entity IS NOT NULL GROUP BY entity",
                (self.graph_id,))}
        out: dict[str, int] = {}
        for part in _chunks(sorted(set(ids))):
            out.update((r[0], int(r[1])) for r in self.db.all(
                f"SELECT entity, SUM(count) FROM forms WHERE graph = ? AND entity IN ({_marks(len(part))}) "
                "GROUP BY entity", (self.graph_id, *part)))
        return out

    # aggregates (a build's summary): over the edge table and the entity rows, in the database

    def counts(self) -> tuple[int, int]:
        """(entities, edges)."""
        ents = self.db.one("SELECT COUNT(*) FROM entities WHERE graph = ?", (self.graph_id,))
        edges = self.db.one("SELECT SUM(n) FROM rel_counts WHERE graph = ?", (self.graph_id,))
        return int(ents[0]) if ents else 0, int(edges[0]) if edges and edges[0] is not None else 0

    def types(self) -> list[str]:
        return [r[0] for r in self.db.all("SELECT DISTINCT type FROM entities WHERE graph = ? ORDER BY type",
                                          (self.graph_id,))]

    def relation_counts(self, k: int) -> dict[str, int]:
        """The k most frequent relations: relation -> edges (ties by name)."""
        return {r[0]: int(r[1]) for r in self.db.all(
            "SELECT rel, n FROM rel_counts WHERE graph = ? ORDER BY n DESC, rel LIMIT ?", (self.graph_id, k))}

    def degrees(self, at_least: int) -> dict[str, int]:
        """Entity id -> edges touching it, for the entities with at least `at_least` (>= 1)."""
        return {r[0]: int(r[1]) for r in self.db.all(
            "SELECT entity, n FROM degrees WHERE graph = ? AND n >= ?", (self.graph_id, max(1, at_least)))}

    def kth_degree(self, k: int) -> int:
        """The k-th largest degree (0 when fewer than k entities have an edge)."""
        row = self.db.one("SELECT n FROM degrees WHERE graph = ? ORDER BY n DESC LIMIT 1 OFFSET ?",
                          (self.graph_id, k - 1))
        return int(row[0]) if row else 0

    def documents(self) -> int:
        row = self.db.one("SELECT COUNT(*) FROM documents WHERE graph = ?", (self.graph_id,))
        return int(row[0]) if row else 0

    def taxonomy(self) -> dict[str, list[str]]:
        row = self.db.one("SELECT taxonomy FROM graphs WHERE id = ?", (self.graph_id,))
        return json.loads(row[0]) if row else {}

    def vectors(self) -> tuple[list[str], np.ndarray] | None:
        """(entity id per row, unit vectors) of the stored forms: graph_search's embedding fallback."""
        rows = self.db.all("SELECT entity, vector FROM forms WHERE graph = ? AND vector IS NOT NULL AND entity IS NOT "
                           "NULL ORDER BY label, text", (self.graph_id,))
        if not rows:
            return None
        m = np.stack([np.frombuffer(bytes(r[1]), dtype=np.float32) for r in rows])
        return [r[0] for r in rows], m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
