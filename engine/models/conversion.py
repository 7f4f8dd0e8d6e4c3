"""Checkpoint conversion as data: each family declares a `Conversion` table, one generic step applies it.

Steps, in order: drop tensors the model does not use (buffers such as `position_ids`), rename keys (regex →
replacement, in order), split tensors that the checkpoint stores fused and we keep apart (GTE's
`up_gate_proj` → `up_proj`, `gate_proj`), then fuse sibling projections into one (q/k/v → `qkv`, gate + up →
`Wi`: one GEMM instead of three). Variants compose tables with `then` (DistilBERT's renames, then BERT's
fusions). Keys no step touches pass through; loading reports the ones the model does not use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Rename:
    pattern: str  # a regex over the whole key (re.sub)
    repl: str


@dataclass(frozen=True)
class Split:
    """`<parent>.<source>.{weight,bias}` → equal chunks along the output dim, one per target, in order."""

    source: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Fuse:
    """`<parent>.<source>.{weight,bias}` for every source → `<parent>.<target>.*`, concatenated in order
    along the output dim (where all sources are present)."""

    sources: tuple[str, ...]
    target: str


@dataclass(frozen=True)
class Conversion:
    drop: tuple[str, ...] = ()  # regexes (re.search) of keys to discard
    renames: tuple[Rename, ...] = ()
    splits: tuple[Split, ...] = ()
    fusions: tuple[Fuse, ...] = ()

    def then(self, other: Conversion) -> Conversion:
        """This table's steps, then `other`'s (each step kind still runs in the order above)."""
        return Conversion(self.drop + other.drop, self.renames + other.renames, self.splits + other.splits,
                          self.fusions + other.fusions)


def _parents(state: dict[str, torch.Tensor], name: str) -> dict[str, list[str]]:
    """parent path -> suffixes (weight, bias) for keys `<parent>.<name>.<suffix>`."""
    found: dict[str, list[str]] = {}
    tail = re.compile(rf"^(.*)\.{re.escape(name)}\.(weight|bias)$")
    for key in state:
        m = tail.match(key)
        if m:
            found.setdefault(m.group(1), []).append(m.group(2))
    return found


def convert_state_dict(state: dict[str, torch.Tensor], conversion: Conversion) -> dict[str, torch.Tensor]:
    drop = re.compile("|".join(f"(?:{d})" for d in conversion.drop)) if conversion.drop else None
    renames = [(re.compile(r.pattern), r.repl) for r in conversion.renames]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if drop is not None and drop.search(key):
            continue
        for pattern, repl in renames:
            key = pattern.sub(repl, key)
        out[key] = value
    for split in conversion.splits:
        for parent, suffixes in _parents(out, split.source).items():
            for suffix in suffixes:
                pieces = out.pop(f"{parent}.{split.source}.{suffix}").chunk(len(split.targets), dim=0)
                for target, piece in zip(split.targets, pieces, strict=True):
                    out[f"{parent}.{target}.{suffix}"] = piece
    for fuse in conversion.fusions:
        for parent, suffixes in _parents(out, fuse.sources[0]).items():
            for suffix in suffixes:
                keys = [f"{parent}.{s}.{suffix}" for s in fuse.sources]
                if all(k in out for k in keys):
                    out[f"{parent}.{fuse.target}.{suffix}"] = torch.cat([out.pop(k) for k in keys], dim=0)
    return out
