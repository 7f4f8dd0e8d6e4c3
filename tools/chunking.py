"""The one chunker: long texts into pieces with character offsets, cut where a reader would cut.

A piece ends at the last paragraph break, else sentence end (`.`, `!`, `?`, closing quotes or brackets,
then whitespace), else line break, else space before `size` characters, never in the first half of the
window; only a window without whitespace is cut hard. Offsets index into the original text: `text[start:end]`
is the piece, so a search hit can be quoted and an entity found in a piece maps straight back.

- Retrieval (`tools/retrieval.py`): pieces an embedding model reads whole, overlapping by `overlap`
  characters from a word boundary, so a sentence cut in two is whole in one of them.
- Parsing for knowledge graphs (`tools/ontology.py`, `sie_mcp/kg_builder.py`): no overlap (a sentence is
  parsed once), and `split_stream` for files read block by block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# all-MiniLM-L6-v2 reads 256 word pieces (~1,000 characters of English); 800 leaves room for long words.
CHUNK_CHARS = 800
OVERLAP_CHARS = 100
_BREAKS = (re.compile(r"\n[ \t]*\n"), re.compile(r"[.!?][\"')\]]*\s"), re.compile(r"\n"), re.compile(r" "))


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    text: str


def cut_point(text: str, start: int, size: int) -> int:
    """Where the piece of at most `size` characters starting at `start` ends (exclusive)."""
    end = start + size
    if end >= len(text):
        return len(text)
    floor = start + size // 2
    for pattern in _BREAKS:
        last = None
        for last in pattern.finditer(text, floor, end):
            pass
        if last is not None:
            return last.end()
    return end


def chunk_text(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    """Pieces of at most `size` characters, without leading or trailing whitespace (whitespace-only pieces
    are left out), each starting `overlap` characters before the previous one ends."""
    if size < 2 or not 0 <= overlap < size // 2:
        raise ValueError(f"chunk size {size} and overlap {overlap}: need size >= 2 and overlap < size/2")
    chunks: list[Chunk] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = cut_point(text, start, size)
        piece_end = _trim_end(text, start, end)
        if piece_end > start:
            chunks.append(Chunk(start, piece_end, text[start:piece_end]))
        if end >= len(text):
            break
        nxt = max(start + 1, end - overlap)
        if nxt < end and overlap:  # start the overlap on a word boundary
            space = text.find(" ", nxt, end)
            nxt = space + 1 if space != -1 else nxt
        start = _skip_space(text, nxt)
    return chunks


def split_stream(pieces: Iterable[str], size: int) -> Iterator[str]:
    """Text arriving in pieces (a file read block by block) -> consecutive parts of at most `size` characters,
    cut like `chunk_text` (they join back into the text, less whitespace-only parts); memory stays about two parts however long the
    stream is."""
    buffer = ""
    for piece in pieces:
        buffer += piece
        while len(buffer) > 2 * size:
            end = cut_point(buffer, 0, size)
            part, buffer = buffer[:end], buffer[end:]
            if part.strip():
                yield part
    while buffer:
        end = cut_point(buffer, 0, size)
        part, buffer = buffer[:end], buffer[end:]
        if part.strip():
            yield part


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _trim_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
