"""Where collections live: Chroma, run in-process and persisted under `<data_dir>/collections/`, or a Chroma
server (`--vector-db-url`) that several replicas share. Why Chroma: docs/collections.md (LanceDB, Chroma
and Qdrant's local mode measured on this machine, bench/bench_vectordb.py).

This module is the only one that speaks Chroma. It stores chunks (vector, text, offsets, the document's
id and metadata) and answers nearest-neighbour queries with a metadata filter; tools/retrieval.py turns
tool calls into these operations. Chroma's calls block (sqlite, its Rust core), so each runs in a worker
thread, one at a time per store: embedded Chroma is one process's database, and serialising its calls
keeps a delete from racing an add of the same collection.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np

from engine.errors import EngineError, InvalidInput
from tools.errors import StoreUnavailable, UnknownCollection

T = TypeVar("T")
log = logging.getLogger("sie_mcp")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,62}[A-Za-z0-9]")
# Our fields in each chunk's metadata; a user's metadata keys may not start with "_".
DOC, CHUNK, START, END = "_doc", "_chunk", "_start", "_end"
OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"}


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    model: str
    dimensions: int
    chunks: int


@dataclass(frozen=True)
class StoredChunk:
    id: str  # the document's id
    chunk: int
    start: int
    end: int
    text: str
    metadata: dict[str, Any]
    score: float  # cosine similarity to the query


@dataclass(frozen=True)
class ChunkRecord:
    doc_id: str
    chunk: int
    start: int
    end: int
    text: str
    metadata: dict[str, Any]


INT64 = (-(2**63), 2**63 - 1)  # Chroma stores integers as int64; a larger one would come back as a float


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        # The name is not echoed: a hostile one would fill the agent's context and the log.
        raise InvalidInput("collection name: use 3-64 letters, digits, '-' or '_', starting and ending with a "
                           "letter or digit")
    return name


def _scalar_problem(value: Any) -> str | None:
    """Why `value` cannot be stored or compared as metadata (None: it can)."""
    if not isinstance(value, (str, int, float, bool)):
        return "must be a string, number or boolean"
    if isinstance(value, float) and not np.isfinite(value):
        return "must be a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        return "is an integer beyond 64 bits"
    return None


def _kind(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "string"


def check_metadata(metadata: Any, where: str) -> dict[str, Any]:
    """Flat metadata: string keys (not starting with '_') to strings, numbers or booleans."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput(f"{where} must be an object of field: value")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or key.startswith(("_", "$")) or len(key) > 100:
            raise InvalidInput(f"{where}: keys must be strings of 1-100 characters, not starting with '_' or '$'")
        problem = _scalar_problem(value)
        if problem is not None:
            raise InvalidInput(f"{where}.{key} {problem} (lists and objects: flatten them into separate fields)")
    return metadata


def chroma_filter(filter_: dict[str, Any] | None) -> dict[str, Any] | None:
    """Our filter ({"brand": "Acme", "price": {"$lt": 100}, "color": {"$in": ["red", "blue"]}}, fields
    ANDed) as Chroma's `where`, each operator and value checked so a mistake reads as a tool error."""
    if not filter_:
        return None
    if not isinstance(filter_, dict):
        raise InvalidInput("filter must be an object like {\"brand\": \"Acme\", \"price\": {\"$lt\": 100}}")
    clauses = []
    for key, cond in filter_.items():
        if not isinstance(key, str) or not key or key.startswith(("_", "$")):
            raise InvalidInput(f"filter key {key!r}: name a metadata field (not starting with '_' or '$')")
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        if not ops:
            raise InvalidInput(f"filter {key}: an empty condition; give a value or {{\"$op\": value}}")
        for op, value in ops.items():
            if op not in OPERATORS:
                raise InvalidInput(f"filter {key}: unknown operator {op!r}; use one of {', '.join(sorted(OPERATORS))}")
            values = value if op in ("$in", "$nin") else [value]
            if op in ("$in", "$nin") and (not isinstance(value, list) or not value):
                raise InvalidInput(f"filter {key}.{op} takes a non-empty list")
            for v in values:
                problem = _scalar_problem(v)
                if problem is not None:
                    raise InvalidInput(f"filter {key}.{op}: a value {problem}")
                if op in ("$gt", "$gte", "$lt", "$lte") and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise InvalidInput(f"filter {key}.{op} compares numbers")
            if len({_kind(v) for v in values}) > 1:  # Chroma compares within one type
                raise InvalidInput(f"filter {key}.{op}: the list mixes strings, numbers and booleans; use one kind")
            clauses.append({key: {op: value}})
    if not clauses:  # {"field": {}}: no condition
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class VectorStore:
    """Collections of chunks in Chroma. `url` None: embedded, persisted under `path`."""

    def __init__(self, path: Path, url: str | None = None, max_chunks: int = 200_000,
                 max_collections: int = 100) -> None:
        self.path, self.url = path, url
        self.max_chunks, self.max_collections = max_chunks, max_collections
        self._client: Any = None
        self._lock = threading.Lock()

    # --- plumbing ------------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            settings = ChromaSettings(anonymized_telemetry=False)  # never phone home
            if self.url:
                parts = urlsplit(self.url)
                self._client = chromadb.HttpClient(host=parts.hostname or "localhost", port=parts.port or 8000,
                                                   ssl=parts.scheme == "https", settings=settings)
            else:
                self.path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(self.path), settings=settings)
        return self._client

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                try:
                    return fn(self._connect(), *args)
                except EngineError:
                    raise
                except Exception as e:  # the database's own failure: one line for the operator, a 503 out
                    log.warning("vector database error (%s): %s: %s", self.url or "embedded", type(e).__name__, e)
                    # The server's URL stays in the log: a client has no use for an internal host name.
                    where = "the collections database (a Chroma server)" if self.url else "the embedded Chroma store"
                    raise StoreUnavailable(f"{where} failed ({type(e).__name__}); retry, or tell the operator "
                                           "(details in the server log)") from e

        return await asyncio.to_thread(locked)

    @staticmethod
    def _get(client: Any, name: str) -> Any:
        try:
            return client.get_collection(name, embedding_function=None)
        except Exception as e:  # chromadb raises NotFoundError (ValueError on older versions)
            if "not exist" in str(e).lower() or "not found" in str(e).lower():
                raise UnknownCollection(f"no collection {name!r}; index_documents creates one, list_collections "
                                        "shows those that exist") from None
            raise

    @staticmethod
    def _info(collection: Any) -> CollectionInfo:
        meta = collection.metadata or {}
        return CollectionInfo(collection.name, str(meta.get("model", "")), int(meta.get("dimensions", 0)),
                              collection.count())

    # --- operations ----------------------------------------------------------------------------

    async def upsert(self, name: str, model: str, dimensions: int, records: Sequence[ChunkRecord],
                     vectors: np.ndarray) -> CollectionInfo:
        """Replace the chunks of the given documents (all their old chunks go) and add these."""
        return await self._run(self._upsert, name, model, dimensions, records, vectors)

    def _upsert(self, client: Any, name: str, model: str, dimensions: int, records: Sequence[ChunkRecord],
                vectors: np.ndarray) -> CollectionInfo:
        existing = {c.name for c in client.list_collections()}
        if name not in existing and len(existing) >= self.max_collections:
            raise InvalidInput(f"{len(existing)} collections exist, the limit is {self.max_collections}: "
                               "delete_collection one you no longer need")
        collection = client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={"model": model, "dimensions": dimensions})
        info = self._info(collection)
        if info.model != model or info.dimensions != dimensions:
            raise InvalidInput(f"collection {name!r} holds {info.model} vectors ({info.dimensions} dims): index "
                               f"with that model, or use a new collection for {model}")
        doc_ids = sorted({r.doc_id for r in records})
        old = collection.get(where={DOC: {"$in": doc_ids}}, include=[])["ids"] if doc_ids else []
        if info.chunks - len(old) + len(records) > self.max_chunks:
            raise InvalidInput(f"collection {name!r} would hold {info.chunks - len(old) + len(records)} chunks; "
                               f"the limit is {self.max_chunks}: split the corpus over collections")
        if old:
            collection.delete(ids=old)
        for i in range(0, len(records), 1000):  # Chroma caps the rows of one call
            part = records[i:i + 1000]
            collection.add(ids=[f"{r.doc_id}#{r.chunk}" for r in part], embeddings=vectors[i:i + 1000],
                           documents=[r.text for r in part],
                           metadatas=[{**r.metadata, DOC: r.doc_id, CHUNK: r.chunk, START: r.start, END: r.end}
                                      for r in part])
        return self._info(collection)

    async def query(self, name: str, vector: np.ndarray, k: int, filter_: dict[str, Any] | None
                    ) -> tuple[CollectionInfo, list[StoredChunk]]:
        where = chroma_filter(filter_)
        return await self._run(self._query, name, vector, k, where)

    def _query(self, client: Any, name: str, vector: np.ndarray, k: int, where: dict[str, Any] | None
               ) -> tuple[CollectionInfo, list[StoredChunk]]:
        collection = self._get(client, name)
        info = self._info(collection)
        if info.chunks == 0:
            return info, []
        found = collection.query(query_embeddings=[vector], n_results=min(k, info.chunks), where=where,
                                 include=["documents", "metadatas", "distances"])
        hits = []
        for text, meta, distance in zip(found["documents"][0], found["metadatas"][0], found["distances"][0],
                                        strict=True):
            user = {key: value for key, value in meta.items() if not key.startswith("_")}
            hits.append(StoredChunk(str(meta[DOC]), int(meta[CHUNK]), int(meta[START]), int(meta[END]), text or "",
                                    user, 1.0 - float(distance)))
        return info, hits

    async def info(self, name: str) -> CollectionInfo:
        return await self._run(lambda client: self._info(self._get(client, name)))

    async def list(self) -> list[CollectionInfo]:
        return await self._run(lambda client: sorted((self._info(c) for c in client.list_collections()),
                                                     key=lambda i: i.name))

    async def delete(self, name: str) -> CollectionInfo:
        def delete(client: Any) -> CollectionInfo:
            info = self._info(self._get(client, name))
            client.delete_collection(name)
            return info

        return await self._run(delete)

    def close(self) -> None:
        self._client = None
