"""Taxonomies: parsing (inline or from operator-registered files) into a tree, and a bounded cache of label
vectors by content hash.

One entry point parses every form (`parse_taxonomy`), so input bounds (depth, path length, node count) have
one place to live. Forms:
- a list of paths `["A > B > C", …]` (inline) or a text file with one path per line (`.txt`; blank lines
  and `#` comments skipped; an optional description after ` | `: `A > B > C | portable computers`);
- a nested object `{"A": {"B": ["C", "D"]}}` (inline) or a `.json` file holding one (or a list of paths);
- parent pointers, a `.tsv` file of `category<TAB>parent` lines (no parent: a top-level category), where a name
  identifies one category.
Malformed lines are reported with their line numbers, and a path given twice is rejected. A category is its
path, so a name may repeat at another depth ("Food > Snacks > Food" is a leaf under Snacks): only parent
pointers can form a cycle, and that error names it ("cycle: A > B > A").
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from engine.errors import InvalidInput

PATH_SEPARATOR = " > "
DESCRIPTION_SEPARATOR = " | "
FILE_FORMATS = {".txt": "lines", ".json": "json", ".tsv": "parents"}


@dataclass
class Node:
    path: tuple[str, ...]
    children: list[Node] = field(default_factory=list)
    description: str = ""

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else ""

    @property
    def text(self) -> str:
        """What is embedded for the node's path: 'Electronics > Computers > Laptops' (+ ': description')."""
        joined = PATH_SEPARATOR.join(self.path)
        return f"{joined}: {self.description}" if self.description else joined


@dataclass
class Taxonomy:
    root: Node
    nodes: list[Node]  # every category, parents before children (breadth-first)
    leaves: list[Node]
    digest: str  # content hash (what label vectors are cached under)
    # (ancestor-or-self, leaf) index pairs into `nodes`, for "best leaf below each category" in one scatter
    ancestor_idx: torch.Tensor
    leaf_idx: torch.Tensor

    @cached_property
    def label_texts(self) -> list[str]:
        """What is embedded once per model: every category's full path, then every category's name."""
        return [n.text for n in self.nodes] + [n.name for n in self.nodes]

    @cached_property
    def leaf_positions(self) -> torch.Tensor:
        position = {id(n): i for i, n in enumerate(self.nodes)}
        return torch.tensor([position[id(n)] for n in self.leaves])

    @cached_property
    def positions(self) -> dict[int, int]:
        """id(node) -> its index in `nodes`."""
        return {id(n): i for i, n in enumerate(self.nodes)}

    def best_below(self, scores: torch.Tensor) -> torch.Tensor:
        """Node scores [N, M] -> per category the best score of a leaf in its subtree (itself for a leaf)."""
        out = torch.full_like(scores, float("-inf"))
        index = self.ancestor_idx.expand(scores.shape[0], -1)
        return out.scatter_reduce_(1, index, scores[:, self.leaf_idx], reduce="amax")

    @property
    def depth(self) -> int:
        return max(len(n.path) for n in self.leaves)


class TaxonomyError(InvalidInput):
    """A taxonomy that cannot be used: the message says where (line numbers) and what to fix."""


def _build(paths: Sequence[tuple[tuple[str, ...], str]], where: Sequence[str]) -> Taxonomy:
    """(path, description) items -> a tree. `where[i]` names item i in errors ('line 7', "taxonomy[3]")."""
    problems: list[str] = []
    seen: dict[tuple[str, ...], str] = {}
    for (path, _), loc in zip(paths, where, strict=True):
        if path in seen:
            problems.append(f"{loc}: duplicate of {seen[path]} ({PATH_SEPARATOR.join(path)})")
            continue
        seen[path] = loc
    if problems:
        raise TaxonomyError(_report(problems))
    root = Node(())
    index: dict[tuple[str, ...], Node] = {(): root}
    for path, description in paths:
        for depth in range(1, len(path) + 1):
            sub = path[:depth]
            if sub not in index:
                index[sub] = Node(sub)
                index[sub[:-1]].children.append(index[sub])
        if description:
            index[path].description = description
    if not root.children:
        raise TaxonomyError("taxonomy is empty: give at least one category path like 'A > B > C'")
    nodes: list[Node] = []
    frontier = list(root.children)
    while frontier:  # breadth-first: parents before children
        nodes.extend(frontier)
        frontier = [c for n in frontier for c in n.children]
    leaves = [n for n in nodes if not n.children]
    digest = hashlib.sha256("\n".join(n.text for n in nodes).encode()).hexdigest()[:32]
    position = {n.path: i for i, n in enumerate(nodes)}
    pairs = [(position[leaf.path[:d]], position[leaf.path]) for leaf in leaves for d in range(1, len(leaf.path) + 1)]
    return Taxonomy(root, nodes, leaves, digest, torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs]))


def _report(problems: list[str], shown: int = 10) -> str:
    more = f" … and {len(problems) - shown} more" if len(problems) > shown else ""
    return "invalid taxonomy: " + "; ".join(problems[:shown]) + more


def _split_line(line: str) -> tuple[tuple[str, ...], str] | str:
    """'A > B > C | desc' -> ((A, B, C), 'desc'), or an error message."""
    body, _, description = line.partition(DESCRIPTION_SEPARATOR.strip())
    parts = [p.strip() for p in body.split(">")]
    if any(not p for p in parts):
        return "empty category name (expected 'A > B > C')"
    return tuple(parts), description.strip()


def _from_lines(lines: Sequence[str], numbered: bool) -> Taxonomy:
    items: list[tuple[tuple[str, ...], str]] = []
    where: list[str] = []
    problems: list[str] = []
    for i, raw in enumerate(lines):
        loc = f"line {i + 1}" if numbered else f"taxonomy[{i}]"
        if not isinstance(raw, str):
            problems.append(f"{loc}: must be a string like 'A > B > C', got {type(raw).__name__}")
            continue
        line = raw.strip()
        if numbered and (not line or line.startswith("#")):
            continue
        if not line:
            problems.append(f"{loc}: empty path")
            continue
        parsed = _split_line(line)
        if isinstance(parsed, str):
            problems.append(f"{loc}: {parsed}: {line!r}")
            continue
        items.append(parsed)
        where.append(loc)
    if problems:
        raise TaxonomyError(_report(problems))
    return _build(items, where)


def _from_parents(lines: Sequence[str]) -> Taxonomy:
    """`category<TAB>parent` lines (an empty parent: top level) -> paths. Names identify categories here, so a
    parent chain that comes back to a category is a cycle, reported with its members."""
    parent: dict[str, str] = {}
    line_of: dict[str, str] = {}
    problems: list[str] = []
    for i, raw in enumerate(lines):
        line = raw.strip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, up = (part.strip() for part in line.partition("\t"))
        if not name:
            problems.append(f"line {i + 1}: empty category name (expected 'category<TAB>parent')")
        elif name in parent:
            problems.append(f"line {i + 1}: {name!r} already has a parent ({line_of[name]})")
        else:
            parent[name], line_of[name] = up, f"line {i + 1}"
    for name, up in parent.items():
        if up and up not in parent:
            problems.append(f"{line_of[name]}: parent {up!r} of {name!r} is not a category (give it a line)")
    if problems:
        raise TaxonomyError(_report(problems))
    items: list[tuple[tuple[str, ...], str]] = []
    where: list[str] = []
    for name in parent:
        chain = [name]
        while parent[chain[-1]]:
            up = parent[chain[-1]]
            if up in chain:
                cycle = chain[chain.index(up):] + [up]
                raise TaxonomyError(f"invalid taxonomy: cycle: {PATH_SEPARATOR.join(reversed(cycle))} "
                                    f"({', '.join(line_of[n] for n in cycle[:-1])})")
            chain.append(up)
        items.append((tuple(reversed(chain)), ""))
        where.append(line_of[name])
    return _build(items, where)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise TaxonomyError(f"invalid taxonomy: duplicate key(s) {', '.join(map(repr, dupes))} in one object")
    return dict(pairs)


def _from_nested(mapping: dict[str, Any]) -> Taxonomy:
    items: list[tuple[tuple[str, ...], str]] = []
    where: list[str] = []

    def walk(value: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if not str(key).strip():
                    raise TaxonomyError(f"invalid taxonomy: empty category name under {PATH_SEPARATOR.join(prefix)!r}")
                path = prefix + (str(key).strip(),)
                items.append((path, ""))
                where.append(PATH_SEPARATOR.join(path))
                walk(child, path)
        elif isinstance(value, list):
            for leaf in value:
                if not isinstance(leaf, str) or not leaf.strip():
                    raise TaxonomyError(f"invalid taxonomy: leaves under {PATH_SEPARATOR.join(prefix)!r} must be "
                                        "non-empty strings")
                path = prefix + (leaf.strip(),)
                items.append((path, ""))
                where.append(PATH_SEPARATOR.join(path))
        elif value not in (None, "", {}):
            raise TaxonomyError("invalid taxonomy: values must be nested objects, lists of names, or empty")

    walk(mapping, ())
    return _build(items, where)


def parse_taxonomy(taxonomy: Any) -> Taxonomy:
    """The one parser: a list of paths or a nested object (inline, or a parsed JSON file) -> Taxonomy."""
    if isinstance(taxonomy, dict):
        return _from_nested(taxonomy)
    if isinstance(taxonomy, list):
        return _from_lines(taxonomy, numbered=False)
    raise TaxonomyError("taxonomy must be a list of paths ('A > B > C'), a nested object, or the name of a "
                        "registered taxonomy")


def load_taxonomy_file(path: Path) -> Taxonomy:
    """An operator's taxonomy file: `.txt` (one path per line, errors by line number) or `.json`."""
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TaxonomyError(f"{path}: unknown taxonomy file format {path.suffix or '(none)'!r}; use .txt (one "
                            "'A > B > C' path per line), .json (a nested object or a list of paths) or .tsv ('category<TAB>parent' "
                            "lines)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TaxonomyError(f"{path}: cannot read ({e.strerror})") from e
    if fmt == "lines":
        return _from_lines(text.splitlines(), numbered=True)
    if fmt == "parents":
        try:
            return _from_parents(text.splitlines())
        except TaxonomyError as e:
            raise TaxonomyError(f"{path}: {e}") from e
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except ValueError as e:
        raise TaxonomyError(f"{path}: invalid JSON ({e})") from e
    try:
        return parse_taxonomy(data)
    except TaxonomyError as e:
        raise TaxonomyError(f"{path}: {e}") from e


class LabelCache:
    """Label vectors per (model, kind of text, content hash), least-recently-used first out, bounded in bytes."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(model_id: str, texts: Sequence[str]) -> tuple[str, str]:
        return model_id, hashlib.sha256("\x1f".join(texts).encode()).hexdigest()

    def get(self, key: tuple[str, str]) -> torch.Tensor | None:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: tuple[str, str], vectors: torch.Tensor) -> None:
        size = vectors.numel() * vectors.element_size()
        if size > self.max_bytes:
            return
        self._items[key] = vectors
        self._items.move_to_end(key)
        while sum(v.numel() * v.element_size() for v in self._items.values()) > self.max_bytes:
            self._items.popitem(last=False)


@dataclass
class TaxonomyStore:
    """What classify keeps between calls: the operator's registered taxonomies and the label-vector cache."""

    registered: dict[str, Taxonomy] = field(default_factory=dict)
    cache: LabelCache = field(default_factory=LabelCache)

    @classmethod
    def from_specs(cls, specs: Sequence[str]) -> TaxonomyStore:
        """`NAME=PATH` items (`--taxonomy`), parsed at start-up so a bad file fails the server, not a call."""
        store = cls()
        for spec in specs:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise ValueError(f"--taxonomy expects NAME=PATH, got {spec!r}")
            store.registered[name] = load_taxonomy_file(Path(path))
        return store

    def get(self, name: str) -> Taxonomy:
        if name not in self.registered:
            known = ", ".join(sorted(self.registered)) or "none are registered (--taxonomy NAME=PATH)"
            raise InvalidInput(f"unknown taxonomy {name!r}; registered: {known}")
        return self.registered[name]
