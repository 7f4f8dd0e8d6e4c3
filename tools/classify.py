"""classify: texts -> labels, flat, zero-shot (NLI), or into a taxonomy.

Taxonomies (tools.taxonomy) are scored one of two ways, and the result says which (`search`):
- **flat** (the default): every leaf scored at once by `PATH_WEIGHT * cos(text, full path) + (1 - PATH_WEIGHT) *
  cos(text, leaf name)`. With the label vectors cached (once per model and taxonomy content) this is one
  matrix product, so nothing is gained by pruning, and nothing is lost to an early wrong turn.
- **beam**: level by level from the root, only the children of the kept categories are scored by a scorer
  callback; the best `beam` are kept. The embedding scorer rates a category by its best leaf (subtree max). It pays when a re-scoring model (`rescore_model`, a cross-encoder or
  an NLI model) judges (text, category) pairs: those cost a forward pass per pair, so scoring every leaf
  would not scale. Pre-filtering by embedding similarity keeps at most `RESCORE_FANOUT` children per level.
Scores are rounded to 4 decimals; `confidence` is the margin between the best and the runner-up score.

An NLI model (an `entailment` label in its id2label) classifies into given labels zero-shot: each label
becomes a hypothesis (`hypothesis_template`, default "This example is {}."), as transformers'
zero-shot-classification pipeline does. A model with its own labels (sentiment …) scores those (softmax).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import torch

from engine.errors import InvalidInput
from engine.registry import Task
from tools.context import ToolContext, as_texts, tool_model
from tools.embed import embed_texts
from tools.gliner2 import gliner2_classify
from tools.nli import DEFAULT_HYPOTHESIS, hypotheses, is_nli, relevance, zero_shot_scores
from tools.schemas import ClassifyResult, LabelScore
from tools.taxonomy import Node, Taxonomy, TaxonomyError, parse_taxonomy
from tools.taxonomy_limits import check_taxonomy

PATH_WEIGHT = 0.5  # flat scoring: weight of the full-path similarity against the leaf-name similarity
RESCORE_FANOUT = 8  # beam with a re-scoring model: children per kept category judged by it, best by embedding
DECIMALS = 4

# scorer(text index, candidate nodes) -> one score per node, higher is better
Scorer = Callable[[int, list[Node]], Awaitable[list[float]]]


def _rounded(x: float) -> float:
    return round(float(x), DECIMALS)


def _label_score(node: Node, score: float) -> LabelScore:
    return LabelScore(label=node.name, path=list(node.path), score=_rounded(score))


def _confidence(ranked: Sequence[tuple[Any, float]]) -> float:
    if len(ranked) < 2:
        return _rounded(1.0 if ranked else 0.0)
    return _rounded(ranked[0][1] - ranked[1][1])


async def beam_walk(root: Node, beam: int, top_k: int, scorer: Scorer, text: int) -> list[tuple[Node, float]]:
    """Top-down beam search from `root`: each level scores only the children of the kept categories; a
    leaf among the best `beam` is finished, the others are expanded. Finished leaves ranked by score."""
    frontier = [root]
    finished: list[tuple[Node, float]] = []
    while frontier:
        candidates = [c for node in frontier for c in node.children]
        if not candidates:
            break
        scores = await scorer(text, candidates)
        kept = sorted(zip(candidates, scores, strict=True), key=lambda c: c[1], reverse=True)[:beam]
        finished.extend((n, s) for n, s in kept if not n.children)
        frontier = [n for n, _ in kept if n.children]
    finished.sort(key=lambda f: f[1], reverse=True)
    return finished[:top_k]


async def _label_vectors(ctx: ToolContext, model_id: str, label_texts: list[str], items: list[str],
                         digest: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(text vectors [N, D], label vectors [M, D]), L2-normalised. Label vectors come from the cache when
    this model has embedded the same label texts before; otherwise they are computed in the same scheduler
    batch as the texts (submitted together) and cached."""
    # A taxonomy's content hash is computed once when it is parsed; flat labels are hashed per call.
    key = (model_id, f"taxonomy:{digest}") if digest else ctx.taxonomies.cache.key(model_id, label_texts)
    cached = ctx.taxonomies.cache.get(key)
    if cached is not None:
        texts = (await embed_texts(ctx, model_id, items, kind="query", normalize=True)).vectors
        return texts, cached
    texts_out, labels_out = await asyncio.gather(
        embed_texts(ctx, model_id, items, kind="query", normalize=True),
        embed_texts(ctx, model_id, label_texts, kind="document", normalize=True))
    ctx.taxonomies.cache.put(key, labels_out.vectors)
    return texts_out.vectors, labels_out.vectors


def _resolve_taxonomy(ctx: ToolContext, taxonomy: Any) -> Taxonomy:
    if isinstance(taxonomy, str):
        return ctx.taxonomies.get(taxonomy)
    tree = parse_taxonomy(taxonomy)
    if len(tree.nodes) > ctx.limits.max_labels:
        raise TaxonomyError(f"taxonomy has {len(tree.nodes)} categories; the limit is {ctx.limits.max_labels} "
                            "per call (an operator can register larger ones with --taxonomy)")
    return tree


async def _own_labels(ctx: ToolContext, model_id: str, info: Any, items: list[str], top_k: int) -> ClassifyResult:
    probs = torch.softmax((await ctx.engine.classify(model_id, items)).logits.float(), dim=-1)
    results, confidence = [], []
    for row in probs:
        top = torch.topk(row, min(top_k, row.numel()))
        ranked = [(info.labels.get(i, str(i)), s) for s, i in zip(top.values.tolist(), top.indices.tolist())]
        results.append([LabelScore(label=name, path=[name], score=_rounded(s)) for name, s in ranked])
        confidence.append(_confidence(ranked))
    return ClassifyResult(model=model_id, method="sequence-classifier", results=results, confidence=confidence)


async def _nli_labels(ctx: ToolContext, model_id: str, info: Any, items: list[str], labels: list[str],
                      top_k: int, template: str, multi_label: bool) -> ClassifyResult:
    try:
        hyps = hypotheses(template, labels)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    premises = [t for t in items for _ in labels]
    out = await ctx.engine.classify(model_id, premises, hyps * len(items))
    scores = zero_shot_scores(out.logits.view(len(items), len(labels), -1), info.labels, multi_label)  # [N, L]
    results, confidence = [], []
    for row in scores.tolist():
        ranked = sorted(zip(labels, row, strict=True), key=lambda x: x[1], reverse=True)
        results.append([LabelScore(label=name, path=[name], score=_rounded(s)) for name, s in ranked[:top_k]])
        confidence.append(_confidence(ranked))
    return ClassifyResult(model=model_id, method="nli-zero-shot", results=results, confidence=confidence)


def _pair_scorer(ctx: ToolContext, model_id: str, labels: dict[int, str], items: list[str], template: str,
                 prefilter: Scorer | None) -> Scorer:
    """Re-scoring by a sequence classifier: P(relevant | text, category path) per candidate. NLI models read
    the path through the hypothesis template."""
    nli = is_nli(labels)

    async def score(text: int, nodes: list[Node]) -> list[float]:
        chosen = list(range(len(nodes)))
        out = [float("-inf")] * len(nodes)
        if prefilter is not None and len(nodes) > RESCORE_FANOUT:
            pre = await prefilter(text, nodes)
            chosen = sorted(chosen, key=lambda i: pre[i], reverse=True)[:RESCORE_FANOUT]
        paths = [nodes[i].text for i in chosen]
        pairs = hypotheses(template, paths) if nli else paths
        logits = (await ctx.engine.classify(model_id, [items[text]] * len(pairs), pairs)).logits
        for i, s in zip(chosen, relevance(logits, labels).tolist(), strict=True):
            out[i] = s
        return out

    return score


async def _taxonomy(ctx: ToolContext, model_id: str, items: list[str], tree: Taxonomy, top_k: int, beam: int,
                    search: str, rescore_model: str | None, template: str) -> ClassifyResult:
    if search == "auto":
        search = "beam" if rescore_model else "flat"
    # Label texts: every category's full path, then its name (flat scoring mixes the two).
    index = tree.positions
    texts, vectors = await _label_vectors(ctx, model_id, tree.label_texts, items, tree.digest)
    m = len(tree.nodes)
    sims = texts @ vectors.T  # [N, 2M]
    mixed = PATH_WEIGHT * sims[:, :m] + (1 - PATH_WEIGHT) * sims[:, m:]  # [N, M]: every category

    results, confidence = [], []
    if search == "flat":
        leaf_scores = mixed[:, tree.leaf_positions]  # [N, leaves]
        k = min(max(top_k, 2), len(tree.leaves))
        top = torch.topk(leaf_scores, k, dim=1)
        for values, idx in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            ranked = [(tree.leaves[i], v) for i, v in zip(idx, values, strict=True)]
            results.append([_label_score(n, s) for n, s in ranked[:top_k]])
            confidence.append(_confidence(ranked))
        return ClassifyResult(model=model_id, method="embedding-similarity", search="flat", results=results,
                              confidence=confidence)

    # The walk's embedding scorer rates a category by the best leaf below it: a branch is kept if anything in
    # it matches, so with every vector cached the walk prunes without the early wrong turns of rating
    # "Electronics" itself against a product title.
    rows = tree.best_below(mixed).tolist()

    async def by_embedding(text: int, nodes: list[Node]) -> list[float]:
        return [rows[text][index[id(n)]] for n in nodes]

    scorer: Scorer = by_embedding
    method = "embedding-similarity"
    if rescore_model:
        rescore_id = ctx.engine.entry(rescore_model).id
        rinfo = await ctx.engine.info(rescore_id)
        if rinfo.task is not Task.SEQUENCE_CLASSIFICATION:
            raise InvalidInput(f"rescore_model {rescore_id} computes {rinfo.task.value}; it must be a cross-encoder "
                               "or an NLI model (see list_models)")
        scorer = _pair_scorer(ctx, rescore_id, rinfo.labels, items, template, by_embedding)
        method = "cross-encoder-rescored"
    walks = await asyncio.gather(*(beam_walk(tree.root, beam, max(top_k, 2), scorer, i) for i in range(len(items))))
    for ranked in walks:
        results.append([_label_score(n, s) for n, s in ranked[:top_k]])
        confidence.append(_confidence(ranked))
    return ClassifyResult(model=model_id, method=method, search="beam", results=results, confidence=confidence)


async def classify(ctx: ToolContext, texts: str | list[str], labels: list[str] | None = None,
                   taxonomy: str | list[str] | dict[str, Any] | None = None, model: str | None = None,
                   top_k: int = 3, beam: int = 3, search: str = "auto", rescore_model: str | None = None,
                   hypothesis_template: str | None = None, multi_label: bool = False) -> ClassifyResult:
    items = as_texts(texts, ctx.limits)
    if taxonomy is not None and not isinstance(taxonomy, str):  # a name: registered (and bounded) by the operator
        check_taxonomy(taxonomy, ctx.limits)  # bounded before any work on it, parsing included
    if top_k < 1 or beam < 1:
        raise InvalidInput("top_k and beam must be at least 1")
    if search not in ("auto", "flat", "beam"):
        raise InvalidInput(f"search must be 'auto', 'flat' or 'beam', got {search!r}")
    if rescore_model is not None and search == "flat":
        raise InvalidInput("rescore_model re-scores the beam walk's frontier: use search='beam' (or 'auto')")
    rescore_entry = ctx.engine.entry(rescore_model) if rescore_model is not None else None  # unknown: UnknownModel
    if rescore_entry is not None and rescore_entry.task not in ("rerank", "classify"):
        # Checked whatever the call's shape, as the OpenAPI document says (its enum is these tasks).
        raise InvalidInput(f"rescore_model {rescore_entry.id} is a model of task {rescore_entry.task}; it must be a "
                           "cross-encoder or an NLI model (list_models: task rerank or classify)")
    template = hypothesis_template or DEFAULT_HYPOTHESIS
    model_id = tool_model(ctx, "classify", model, ctx.defaults.classify_model or ctx.defaults.embed_model)
    info = await ctx.engine.info(model_id)
    if labels is not None and taxonomy is not None:
        raise InvalidInput("give exactly one of labels (a flat list) or taxonomy (paths, a nested object, or a "
                           "registered taxonomy's name)")
    if info.task is Task.SCHEMA_EXTRACTION:  # GLiNER2: its classification head over the labels
        if labels is None or taxonomy is not None:
            raise InvalidInput(f"model {model_id} (GLiNER2) classifies into flat labels: send labels, e.g. "
                               "['billing', 'bug report', 'praise'], not a taxonomy")
        return await gliner2_classify(ctx, items, model_id, labels, multi_label, top_k)
    if info.task is Task.SEQUENCE_CLASSIFICATION:
        if not is_nli(info.labels):
            if labels or taxonomy:
                raise InvalidInput(f"model {model_id} classifies into its own labels "
                                   f"({', '.join(info.labels.values())}); omit labels/taxonomy, or pick an "
                                   "embedding model or an NLI model for your own labels")
            return await _own_labels(ctx, model_id, info, items, top_k)
        if labels is None and taxonomy is None:
            raise InvalidInput(f"model {model_id} is an NLI model: it classifies zero-shot into the labels you "
                               "give; send labels, e.g. ['billing', 'bug report', 'praise']")
        if labels is not None:
            flat = list(dict.fromkeys(as_texts(labels, ctx.limits, "labels", max_items=ctx.limits.max_labels)))
            return await _nli_labels(ctx, model_id, info, items, flat, top_k, template, multi_label)
        # An NLI model walking a taxonomy: it judges each level's candidates (no embeddings to pre-filter).
        tree = _resolve_taxonomy(ctx, taxonomy)
        scorer = _pair_scorer(ctx, model_id, info.labels, items, template, None)
        walks = await asyncio.gather(*(beam_walk(tree.root, beam, max(top_k, 2), scorer, i)
                                       for i in range(len(items))))
        return ClassifyResult(model=model_id, method="nli-zero-shot", search="beam",
                              results=[[_label_score(n, s) for n, s in w[:top_k]] for w in walks],
                              confidence=[_confidence(w) for w in walks])
    if info.task is not Task.EMBED:
        raise InvalidInput(f"model {model_id} computes {info.task.value}; classify needs an embedding model, an "
                           "NLI model or a sequence classifier (see list_models)")
    if labels is None and taxonomy is None:
        raise InvalidInput("give labels (a flat list) or taxonomy (paths, a nested object, or a registered "
                           "taxonomy's name)")
    if labels is not None:
        flat = list(dict.fromkeys(as_texts(labels, ctx.limits, "labels", max_items=ctx.limits.max_labels)))
        text_vecs, label_vecs = await _label_vectors(ctx, model_id, flat, items)
        sims = text_vecs @ label_vecs.T  # [N, L]
        results, confidence = [], []
        for row in sims.tolist():
            ranked = sorted(zip(flat, row, strict=True), key=lambda x: x[1], reverse=True)
            results.append([LabelScore(label=name, path=[name], score=_rounded(s)) for name, s in ranked[:top_k]])
            confidence.append(_confidence(ranked))
        return ClassifyResult(model=model_id, method="embedding-similarity", results=results, confidence=confidence)
    return await _taxonomy(ctx, model_id, items, _resolve_taxonomy(ctx, taxonomy), top_k, beam, search,
                           rescore_model, template)
