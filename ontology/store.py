"""The graph store: graphs as JSON files in a data directory, bounded and expiring, written atomically.

Layout: `<dir>/<graph id>.json` (the node-link JSON of `KnowledgeGraph.to_json`). A write goes to a temp file
in the same directory, is fsynced, then renamed over the old file (`os.replace` is atomic on POSIX), so a
reader or a crash sees the old graph or the new one, never half of one. Bounds are applied after each write:
graphs older than `ttl_s` (by last write) are deleted, then the least recently written ones until at most
`max_graphs` remain and their files total at most `max_bytes`. The graph just written is never the one
evicted; a graph that alone exceeds `max_bytes` is refused before it is written.

One process owns a directory's writes. Several replicas need either a shared volume with one replica that
builds graphs (the others read), or one replica owning graphs (route graph tools to it): see docs/ontology.md.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ontology.graph import KnowledgeGraph

GRAPH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class GraphNotFound(KeyError):
    pass


class GraphTooLarge(ValueError):
    pass


def valid_id(graph_id: str) -> bool:
    return bool(GRAPH_ID.fullmatch(graph_id)) and ".." not in graph_id


@dataclass(frozen=True)
class GraphInfo:
    id: str
    bytes: int
    updated: float  # unix time of the last write


class GraphStore:
    def __init__(self, root: Path, max_graphs: int = 100, max_bytes: int = 1 << 30, ttl_s: float = 30 * 86400,
                 cache_size: int = 8) -> None:
        self.root = Path(root)
        self.max_graphs, self.max_bytes, self.ttl_s = max_graphs, max_bytes, ttl_s
        self._cache: dict[str, tuple[float, KnowledgeGraph]] = {}  # id -> (mtime, graph), LRU order
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _path(self, graph_id: str) -> Path:
        if not valid_id(graph_id):
            raise GraphNotFound(f"invalid graph id {graph_id!r}: letters, digits, '_', '-', '.'; at most 64")
        return self.root / f"{graph_id}.json"

    def list(self) -> list[GraphInfo]:
        if not self.root.is_dir():
            return []
        out = []
        for p in self.root.glob("*.json"):
            try:
                st = p.stat()
            except FileNotFoundError:  # evicted between glob and stat
                continue
            if time.time() - st.st_mtime <= self.ttl_s:
                out.append(GraphInfo(p.stem, st.st_size, st.st_mtime))
        return sorted(out, key=lambda i: i.id)

    def exists(self, graph_id: str) -> bool:
        try:
            p = self._path(graph_id)
        except GraphNotFound:
            return False
        return p.is_file() and time.time() - p.stat().st_mtime <= self.ttl_s

    def load(self, graph_id: str) -> KnowledgeGraph:
        p = self._path(graph_id)
        try:
            mtime = p.stat().st_mtime
        except FileNotFoundError:
            raise GraphNotFound(f"no graph {graph_id!r}") from None
        if time.time() - mtime > self.ttl_s:
            raise GraphNotFound(f"graph {graph_id!r} expired")
        with self._lock:
            hit = self._cache.pop(graph_id, None)
            if hit is not None and hit[0] == mtime:
                self._cache[graph_id] = hit
                return hit[1]
        kg = KnowledgeGraph.from_json(json.loads(p.read_text(encoding="utf-8")))
        self._remember(graph_id, mtime, kg)
        return kg

    def read_text(self, graph_id: str) -> str:
        """The stored JSON as is (for MCP resource reads)."""
        p = self._path(graph_id)
        if not self.exists(graph_id):
            raise GraphNotFound(f"no graph {graph_id!r}")
        return p.read_text(encoding="utf-8")

    def save(self, graph_id: str, kg: KnowledgeGraph) -> GraphInfo:
        p = self._path(graph_id)
        data = json.dumps(kg.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) > self.max_bytes:
            raise GraphTooLarge(f"graph {graph_id!r} would take {len(data)} bytes; the store holds at most "
                                f"{self.max_bytes}: split the documents over several graphs")
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{graph_id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        mtime = p.stat().st_mtime
        self._remember(graph_id, mtime, kg)
        self._evict(keep=graph_id)
        return GraphInfo(graph_id, len(data), mtime)

    def delete(self, graph_id: str) -> None:
        self._path(graph_id).unlink(missing_ok=True)
        with self._lock:
            self._cache.pop(graph_id, None)

    def _remember(self, graph_id: str, mtime: float, kg: KnowledgeGraph) -> None:
        with self._lock:
            self._cache.pop(graph_id, None)
            self._cache[graph_id] = (mtime, kg)
            while len(self._cache) > self._cache_size:
                self._cache.pop(next(iter(self._cache)))

    def _evict(self, keep: str) -> None:
        now = time.time()
        infos = []
        for p in self.root.glob("*.json"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if now - st.st_mtime > self.ttl_s and p.stem != keep:
                self.delete(p.stem)
            else:
                infos.append(GraphInfo(p.stem, st.st_size, st.st_mtime))
        infos.sort(key=lambda i: (i.id == keep, i.updated))  # oldest first, the new one last
        total = sum(i.bytes for i in infos)
        while infos and (len(infos) > self.max_graphs or total > self.max_bytes) and infos[0].id != keep:
            victim = infos.pop(0)
            total -= victim.bytes
            self.delete(victim.id)
        for stale in self.root.glob(".*.tmp"):  # temp files of a write that crashed before its rename
            if now - stale.stat().st_mtime > 3600:
                stale.unlink(missing_ok=True)
