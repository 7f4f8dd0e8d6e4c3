"""Bounds on a taxonomy, checked before any work is done on it (parsing included).

A taxonomy is the one argument whose cost is not linear in its size: parsing stores every prefix of every
path, and the walk embeds every node. A 20,000-segment path (80 KB) took 7 s of event-loop time to parse
and 1.5 GB; a 950-level nested object ran into the request timeout. `check_taxonomy` walks the argument
once, iteratively, stopping at the first breach, and refuses it with an error that names the limit:
depth (levels), characters per path or category name, and categories (nodes, counted as the tree would
hold them, with a path's prefixes). Within these bounds parsing costs O(depth x nodes) at most.
"""

from __future__ import annotations

from typing import Any

from engine.errors import InputTooLong, InvalidInput
from tools.context import Limits, check_utf8

SEPARATOR = ">"


def check_taxonomy(taxonomy: Any, limits: Limits) -> None:
    """Raise InputTooLong / InvalidInput unless `taxonomy` (paths, or a nested object) is within `limits`."""
    if isinstance(taxonomy, list):
        _check_paths(taxonomy, limits)
    elif isinstance(taxonomy, dict):
        _check_tree(taxonomy, limits)
    else:
        raise InvalidInput("taxonomy must be a list of paths ('A > B > C') or a nested object")


def _check_name(name: str, what: str, limits: Limits) -> None:
    if len(name) > limits.max_category_chars:
        raise InputTooLong(f"{what} has {len(name)} characters; the limit is {limits.max_category_chars} per "
                           "taxonomy path or category")
    check_utf8(name, what)


def _check_paths(paths: list[Any], limits: Limits) -> None:
    if len(paths) > limits.max_labels:
        raise InputTooLong(f"taxonomy has {len(paths)} paths; the limit is {limits.max_labels} categories")
    prefixes: set[str] = set()
    for i, path in enumerate(paths):
        if not isinstance(path, str):
            raise InvalidInput(f"taxonomy[{i}] must be a string like 'A > B > C', got {type(path).__name__}")
        _check_name(path, f"taxonomy[{i}]", limits)
        depth = path.count(SEPARATOR) + 1
        if depth > limits.max_taxonomy_depth:
            raise InputTooLong(f"taxonomy[{i}] has {depth} levels; the limit is {limits.max_taxonomy_depth}")
        # Categories as the tree holds them: every prefix of every path, once.
        parts = [p.strip() for p in path.split(SEPARATOR)]
        if not all(parts):
            raise InvalidInput(f"taxonomy[{i}] has an empty category name: write paths like 'A > B > C'")
        for d in range(1, len(parts) + 1):
            prefixes.add(" > ".join(parts[:d]))
        if len(prefixes) > limits.max_labels:
            raise InputTooLong(f"taxonomy has more than {limits.max_labels} categories (counting each path's "
                               "parents); the limit is per call")


def _check_tree(tree: dict[str, Any], limits: Limits) -> None:
    nodes = 0
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = list(value.items())
        elif isinstance(value, list):
            children = [(leaf, None) for leaf in value]
        else:
            continue  # a leaf value: None, "" or {} (anything else is the parser's to refuse)
        if children and depth + 1 > limits.max_taxonomy_depth:
            raise InputTooLong(f"taxonomy is nested deeper than {limits.max_taxonomy_depth} levels; the limit is "
                               f"{limits.max_taxonomy_depth}")
        for name, child in children:
            nodes += 1
            if nodes > limits.max_labels:
                raise InputTooLong(f"taxonomy has more than {limits.max_labels} categories; the limit is per call")
            if not isinstance(name, str):
                raise InvalidInput(f"taxonomy category names must be strings, got {type(name).__name__}")
            _check_name(name, "a taxonomy category name", limits)
            if child is not None:
                stack.append((child, depth + 1))
