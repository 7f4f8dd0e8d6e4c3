"""classify: texts -> labels, flat or down a taxonomy tree.

With an embedding model, texts and labels are embedded and compared by cosine similarity. A taxonomy is
walked top-down with a beam: at each level the children of the kept categories are scored by the
similarity of the text to the category's full path ("Electronics > Computers > Laptops"), the best
`beam` are kept and expanded, and final paths are ranked by their mean score over levels, so a deep
category wins only if every step on its way matched. The agent never has to read the taxonomy.
With a sequence-classification model, the model's own labels are scored (softmax).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from engine.errors import InvalidInput
from engine.registry import Task
from tools.context import ToolContext, as_texts
from tools.embed import embed_texts
from tools.schemas import ClassifyResult, LabelScore
from tools.taxonomy_limits import check_taxonomy

PATH_SEPARATOR = " > "


@dataclass
class Node:
    path: tuple[str, ...]
    children: list[Node] = field(default_factory=list)

    @property
    def text(self) -> str:
        return PATH_SEPARATOR.join(self.path)


def parse_taxonomy(taxonomy: list[str] | dict[str, Any]) -> Node:
    """Paths ("A > B > C") or a nested mapping ({"A": {"B": {"C": {}}}}) -> a tree under a virtual root."""
    root = Node(())
    index: dict[tuple[str, ...], Node] = {(): root}

    def add(path: tuple[str, ...]) -> None:
        for depth in range(1, len(path) + 1):
            sub = path[:depth]
            if sub not in index:
                node = Node(sub)
                index[sub[:-1]].children.append(node)
                index[sub] = node

    def walk(mapping: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(mapping, dict):
            for key, value in mapping.items():
                add(prefix + (str(key),))
                walk(value, prefix + (str(key),))
        elif isinstance(mapping, list):
            for leaf in mapping:
                add(prefix + (str(leaf),))
        elif mapping not in (None, "", {}):
            raise InvalidInput("taxonomy values must be nested objects, lists of names, or empty")

    if isinstance(taxonomy, dict):
        walk(taxonomy, ())
    elif isinstance(taxonomy, list):
        for item in taxonomy:
            if not isinstance(item, str) or not item.strip():
                raise InvalidInput("taxonomy paths must be non-empty strings like 'A > B > C'")
            add(tuple(part.strip() for part in item.split(">") if part.strip()))
    else:
        raise InvalidInput("taxonomy must be a list of paths or a nested object")
    if not root.children:
        raise InvalidInput("taxonomy is empty")
    return root


def all_nodes(root: Node) -> list[Node]:
    out, stack = [], list(root.children)
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.children)
    return out


def beam_walk(sim: dict[tuple[str, ...], float], root: Node, beam: int, top_k: int) -> list[tuple[Node, float]]:
    """Top-down beam search; `sim` maps a node's path to the text's similarity with it."""
    frontier: list[tuple[Node, list[float]]] = [(root, [])]
    finished: list[tuple[Node, float]] = []
    while frontier:
        candidates = []
        for node, scores in frontier:
            if not node.children and node.path:
                finished.append((node, sum(scores) / len(scores)))
                continue
            candidates.extend((child, scores + [sim[child.path]]) for child in node.children)
        candidates.sort(key=lambda c: sum(c[1]) / len(c[1]), reverse=True)
        frontier = candidates[:beam]
    finished.sort(key=lambda f: f[1], reverse=True)
    return finished[:top_k]


async def classify(ctx: ToolContext, texts: str | list[str], labels: list[str] | None = None,
                   taxonomy: list[str] | dict[str, Any] | None = None, model: str | None = None,
                   top_k: int = 3, beam: int = 3) -> ClassifyResult:
    items = as_texts(texts, ctx.limits)
    if taxonomy is not None:
        check_taxonomy(taxonomy, ctx.limits)  # bounded before any work on it
    if top_k < 1 or beam < 1:
        raise InvalidInput("top_k and beam must be at least 1")
    model_id = ctx.engine.entry(model or ctx.defaults.classify_model or ctx.defaults.embed_model).id
    info = await ctx.engine.info(model_id)
    if info.task is Task.SEQUENCE_CLASSIFICATION:
        if labels or taxonomy:
            raise InvalidInput(f"model {model_id} classifies into its own labels "
                               f"({', '.join(info.labels.values())}); omit labels/taxonomy, or pick an embedding model")
        probs = torch.softmax((await ctx.engine.classify(model_id, items)).logits, dim=-1)
        results = []
        for row in probs:
            top = torch.topk(row, min(top_k, row.numel()))
            results.append([LabelScore(label=info.labels.get(i, str(i)), path=[info.labels.get(i, str(i))],
                                       score=float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())])
        return ClassifyResult(model=model_id, method="sequence-classifier", results=results)

    if (labels is None) == (taxonomy is None):
        raise InvalidInput("give exactly one of labels (a flat list) or taxonomy (paths or a nested object)")
    if labels is not None:
        flat = as_texts(labels, ctx.limits, "labels", max_items=ctx.limits.max_labels)
        root = Node((), [Node((label,)) for label in dict.fromkeys(flat)])
    else:
        root = parse_taxonomy(taxonomy)  # type: ignore[arg-type]
    nodes = all_nodes(root)
    if len(nodes) > ctx.limits.max_labels:
        raise InvalidInput(f"taxonomy has {len(nodes)} categories; the limit is {ctx.limits.max_labels}")
    text_vecs = (await embed_texts(ctx, model_id, items, kind="query", normalize=True)).vectors  # [N, D]
    label_vecs = (await embed_texts(ctx, model_id, [n.text for n in nodes], kind="document",
                                    normalize=True)).vectors  # [M, D]
    sims = text_vecs @ label_vecs.T  # [N, M]
    results = []
    for row in sims.tolist():
        sim = {n.path: s for n, s in zip(nodes, row, strict=True)}
        results.append([LabelScore(label=node.path[-1], path=list(node.path), score=score)
                        for node, score in beam_walk(sim, root, beam, top_k)])
    return ClassifyResult(model=model_id, method="embedding-similarity", results=results)
