"""Long documents into chunks an embedding model reads whole, each with its character offsets.

A chunk ends at the last paragraph break, sentence end or space before `size` characters (in that order
of preference, but never in the first half of the window), and the next one starts `overlap` characters
earlier at a word boundary, so a sentence cut in two is still whole in one of them. Offsets index into
the original text: `text[start:end]` is the chunk, so a search hit can be quoted or expanded exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

# all-MiniLM-L6-v2 reads 256 word pieces (~1,000 characters of English); 800 leaves room for long words.
CHUNK_CHARS = 800
OVERLAP_CHARS = 100
_BREAKS = ("\n\n", ". ", "! ", "? ", "\n", " ")


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    text: str


def chunk_text(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    if size < 2 or not 0 <= overlap < size // 2:
        raise ValueError(f"chunk size {size} and overlap {overlap}: need size >= 2 and overlap < size/2")
    chunks: list[Chunk] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            end = _break_before(text, start, end)
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


def _break_before(text: str, start: int, end: int) -> int:
    floor = start + (end - start) // 2
    for mark in _BREAKS:
        at = text.rfind(mark, floor, end)
        if at != -1:
            return at + len(mark)
    return end


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _trim_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
