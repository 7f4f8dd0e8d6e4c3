"""Sentence-aware chunking with offsets: long texts are parsed in pieces that never cut a sentence.

A chunk ends at a paragraph break if one falls in the window, else at the last sentence end, else at the
last whitespace; only a window with no whitespace at all is cut hard. Offsets are into the original text,
so what a model finds in a chunk maps straight back (chunk start + offset in chunk).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s")


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    text: str


def _cut(text: str, start: int, max_chars: int) -> int:
    """Where the chunk starting at `start` ends (exclusive)."""
    limit = start + max_chars
    if limit >= len(text):
        return len(text)
    window = text[start:limit]
    half = max_chars // 2  # prefer a boundary in the second half, so chunks are not tiny
    for pattern in (_PARAGRAPH, _SENTENCE_END):
        ends = [m.end() for m in pattern.finditer(window)]
        good = [e for e in ends if e >= half] or ends
        if good:
            return start + good[-1]
    space = window.rfind(" ")
    return start + space + 1 if space > 0 else limit


def chunk_text(text: str, max_chars: int = 20_000) -> list[Chunk]:
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    chunks: list[Chunk] = []
    start = 0
    while start < len(text):
        end = _cut(text, start, max_chars)
        if text[start:end].strip():
            chunks.append(Chunk(start, end, text[start:end]))
        start = end
    return chunks


def split_stream(pieces: Iterable[str], max_chars: int) -> Iterator[str]:
    """Text arriving in pieces (a file read block by block) -> parts of at most `max_chars`, cut like
    `chunk_text`; memory stays about two parts however long the stream is."""
    buffer = ""
    for piece in pieces:
        buffer += piece
        while len(buffer) > 2 * max_chars:
            end = _cut(buffer, 0, max_chars)
            part, buffer = buffer[:end], buffer[end:]
            if part.strip():
                yield part
    for chunk in chunk_text(buffer, max_chars):
        yield chunk.text
