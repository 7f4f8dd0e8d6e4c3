"""The KG builder: `sie-tools kg build DIR --out OUT [--server URL] [--labels …]`.

Reads `.txt`, `.md` and `.jsonl` (one JSON object per line with a text field) under DIR, builds a knowledge
graph in-process (the same build_ontology code the server runs, on a private temporary store) or against a
running server over MCP, and writes OUT/graph.json, graph.graphml, graph.ttl, graph.jsonld and graph.html.

Input is streamed: a file is read block by block and cut into parts of at most --max-chars at paragraph or
sentence boundaries (tools.chunking.split_stream), documents go to the builder in batches, so memory is
bounded by a batch, not by the corpus or the largest file. Files that cannot be read as text (NUL bytes,
not UTF-8, a .jsonl line that is not JSON or has no text) are skipped with one message each; a first pass
validates a file's encoding before any of it is used, so a file is used whole or not at all. The outputs
are written to a temporary folder beside OUT and renamed into place at the end: OUT is complete or untouched.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

SUFFIXES = (".txt", ".md", ".jsonl")
BLOCK = 1 << 20


class BuildError(Exception):
    """A problem the user fixes (no documents, output not writable): one message, exit 2."""


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    bytes: int  # source bytes this document accounts for (progress)


def _utf8_problem(path: Path) -> str | None:
    """None if the file is valid UTF-8 with no NUL byte, else what is wrong (streamed: bounded memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            if b"\0" in block:
                return f"binary file (NUL byte at offset {offset + block.index(0)})"
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                return (f"not UTF-8 (byte 0x{block[e.start]:02x} at offset {offset + e.start}); convert it, e.g. "
                        "iconv -f latin1 -t utf-8")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "not UTF-8 (truncated multi-byte character at the end)"
    return None


def _text_parts(path: Path, rel: str, max_chars: int, skipped: list[str]) -> Iterator[Doc]:
    from tools.chunking import split_stream

    size = path.stat().st_size
    with path.open("r", encoding="utf-8") as f:
        parts = split_stream(iter(lambda: f.read(BLOCK), ""), max_chars)
        first = next(parts, None)
        if first is None:
            skipped.append(f"{rel}: empty")
            yield Doc("", "", size)
            return
        second = next(parts, None)
        if second is None:
            yield Doc(rel, first, size)
            return
        yield Doc(f"{rel}#1", first, 0)
        yield Doc(f"{rel}#2", second, 0)
        for k, part in enumerate(parts, start=3):
            yield Doc(f"{rel}#{k}", part, 0)
    yield Doc("", "", size)  # progress marker for the whole file (no text)


def _jsonl_docs(path: Path, rel: str, max_chars: int, field: str, skipped: list[str]) -> Iterator[Doc]:
    from tools.chunking import chunk_text

    with path.open("r", encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            size = len(line.encode())
            if not line.strip():
                yield Doc("", "", size)
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                skipped.append(f"{rel}:{n}: not JSON ({e.msg})")
                yield Doc("", "", size)
                continue
            text = obj.get(field) if isinstance(obj, dict) else None
            if not isinstance(text, str) or not text.strip():
                skipped.append(f"{rel}:{n}: no {field!r} string")
                yield Doc("", "", size)
                continue
            doc_id = str(obj.get("id") or f"{rel}:{n}")
            pieces = chunk_text(text, max_chars, overlap=0)
            for k, c in enumerate(pieces, start=1):
                yield Doc(doc_id if len(pieces) == 1 else f"{doc_id}#{k}", c.text, size if k == 1 else 0)


def input_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BuildError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def iter_documents(folder: Path, max_chars: int, skipped: list[str], text_field: str = "text") -> Iterator[Doc]:
    for path in input_files(folder):
        rel = path.relative_to(folder).as_posix()
        problem = _utf8_problem(path)
        if problem is not None:
            skipped.append(f"{rel}: {problem}")
            yield Doc("", "", path.stat().st_size)
            continue
        if path.suffix.lower() == ".jsonl":
            yield from _jsonl_docs(path, rel, max_chars, text_field, skipped)
        else:
            yield from _text_parts(path, rel, max_chars, skipped)


class ProgressBar:
    """A one-line bar on a terminal, a line per 10 % elsewhere (logs stay short)."""

    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total, self.out, self.done, self.docs = max(total, 1), out, 0, 0
        self.tty = out.isatty()
        self.last_decile = -1
        self.started = time.monotonic()

    def update(self, bytes_done: int, docs: int) -> None:
        self.done, self.docs = min(bytes_done, self.total), docs
        frac = self.done / self.total
        rate = docs / max(time.monotonic() - self.started, 1e-6) * 60
        if self.tty:
            bar = "#" * int(frac * 30)
            self.out.write(f"\r[{bar:<30}] {frac:4.0%} {docs} documents ({rate:.0f}/min)")
            self.out.flush()
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            self.out.write(f"{frac:4.0%} {docs} documents ({rate:.0f}/min)\n")

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")


def _batches(docs: Iterator[Doc], batch_docs: int, batch_chars: int) -> Iterator[tuple[list[Doc], int]]:
    batch: list[Doc] = []
    chars = consumed = 0
    for d in docs:
        consumed += d.bytes
        if d.text:
            batch.append(d)
            chars += len(d.text)
        if batch and (len(batch) >= batch_docs or chars >= batch_chars):
            yield batch, consumed
            batch, chars = [], 0
    yield batch, consumed


def _publish(build: Path, out: Path) -> None:
    """Move the finished folder onto OUT (an old OUT is replaced only once the new one is complete)."""
    os.chmod(build, 0o755)  # mkdtemp makes it private; the exports are for people to open
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(build, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class BuildReport:
    documents: int
    entities: int
    relations: int
    skipped: list[str]
    out: Path
    graph_id: str | None  # the graph's id on the server (--server), else None


async def _build_in_process(settings: Any, batches: Iterator[tuple[list[Doc], int]], bar: ProgressBar,
                            labels: list[str] | None, parse_model: str | None, relations: list[str] | None = None):
    from ontology.store import GraphStore
    from sie_mcp.runtime import build_runtime
    from tools.ontology import GraphService, build_ontology

    runtime = build_runtime(settings)
    await runtime.engine.start()
    docs = 0
    try:
        with tempfile.TemporaryDirectory(prefix="sie-kg-") as tmp:
            service = GraphService(GraphStore(Path(tmp), max_graphs=1, max_bytes=1 << 40))
            ctx = dataclasses.replace(runtime.tool_context(), graphs=service)
            for batch, consumed in batches:
                if batch:
                    await build_ontology(ctx, documents=[{"id": d.id, "text": d.text} for d in batch], labels=labels,
                                         model=parse_model, graph="kg", relations=relations)
                    docs += len(batch)
                bar.update(consumed, docs)
            return None, (service.store.load("kg") if docs else None)
    finally:
        await runtime.engine.shutdown()


async def _build_remote(url: str, batches: Iterator[tuple[list[Doc], int]], bar: ProgressBar,
                        labels: list[str] | None, parse_model: str | None, relations: list[str] | None = None):
    import uuid

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from ontology.graph import KnowledgeGraph

    endpoint = url if url.rstrip("/").endswith("/mcp") else url.rstrip("/") + "/mcp"
    graph_id = "kg-" + uuid.uuid4().hex[:10]
    docs = 0
    # a graph resource is one SSE event of its whole JSON: no 1 MiB cap on it; a batch may parse for minutes
    async with streamable_http_client(endpoint, max_sse_event_size=None) as (read, write), \
            ClientSession(read, write, read_timeout_seconds=900) as session:
        await session.initialize()
        for batch, consumed in batches:
            if batch:
                args: dict[str, Any] = {"documents": [{"id": d.id, "text": d.text} for d in batch], "graph": graph_id}
                if labels:
                    args["labels"] = labels
                if parse_model:
                    args["model"] = parse_model
                if relations:
                    args["relations"] = relations
                result = await session.call_tool("build_ontology", args)
                if result.is_error:
                    raise BuildError(f"the server refused a batch: {result.content[0].text}")  # type: ignore[union-attr]
                docs += len(batch)
            bar.update(consumed, docs)
        if not docs:
            return None, None
        read_result = await session.read_resource(f"graph://{graph_id}")
        return graph_id, KnowledgeGraph.from_json(json.loads(read_result.contents[0].text))  # type: ignore[union-attr]


def build(folder: Path, out: Path, settings: Any, server: str | None = None, labels: list[str] | None = None,
          parse_model: str | None = None, max_chars: int = 100_000, batch_docs: int = 64,
          text_field: str = "text", progress: TextIO = sys.stderr, relations: list[str] | None = None) -> BuildReport:
    from ontology.exports import write_all

    files = input_files(folder)
    if not files:
        raise BuildError(f"no documents: {folder} has no {', '.join(SUFFIXES)} files")
    skipped: list[str] = []
    bar = ProgressBar(sum(p.stat().st_size for p in files), progress)
    batches = _batches(iter_documents(folder, max_chars, skipped, text_field), batch_docs, 4 * max_chars)
    first = next(batches)
    if not first[0]:  # the last batch is the only one that can be empty: nothing to build, no model to load
        for s in skipped:
            progress.write(f"skipped {s}\n")
        raise BuildError(f"no documents: every file under {folder} was skipped or empty")
    batches = itertools.chain([first], batches)
    if server:
        graph_id, kg = asyncio.run(_build_remote(server, batches, bar, labels, parse_model, relations))
    else:
        graph_id, kg = asyncio.run(_build_in_process(settings, batches, bar, labels, parse_model, relations))
    bar.close()
    for s in skipped:
        progress.write(f"skipped {s}\n")
    if kg is None:
        raise BuildError(f"no documents: every file under {folder} was skipped or empty")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        write_all(kg, staging, title=f"Knowledge graph of {folder.name}")
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    entities, edges = kg.summary_counts()
    return BuildReport(len(kg.records), entities, edges, skipped, out, graph_id)
