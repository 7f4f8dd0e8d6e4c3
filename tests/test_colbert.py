"""ColBERT multi-vectors (per-token projection, L2-normalised) and MaxSim vs direct computations.

Thresholds: fp32 max abs ≤ 1e-4 against HF BertModel hidden states @ W.T, normalised; ≤ 1e-5 for batch
invariance and for MaxSim against a per-pair loop.
"""

from __future__ import annotations

import asyncio

import pytest
import torch
import transformers

from engine.heads.colbert import maxsim
from engine.registry import Task
from tests.conftest import COLBERT_DIM as DIM
from tests.reference import max_abs, reference_hidden, serve

PARITY = 1e-4
INVARIANCE = 1e-5
def _load(path, **kw):
    return serve(path, **kw)


def test_multi_vectors_match_direct_computation(colbert_dirs, texts):
    base, colbert, _, w = colbert_dirs
    ours = _load(colbert)  # HF_ColBERT architecture: multi_vector without any override
    assert ours.info.task is Task.MULTI_VECTOR and ours.info.output_dim == DIM
    hf = transformers.BertModel.from_pretrained(base, attn_implementation="eager").eval()
    encoded = ours.tokenizer.encode(texts)
    ref = [torch.nn.functional.normalize(h @ w.T, dim=-1) for h in reference_hidden(hf, encoded)]
    out = ours.multi_vector(texts)
    assert out.token_counts == [len(e) for e in encoded]
    for got, r in zip(out.vectors, ref, strict=True):
        assert got.shape == r.shape
        assert max_abs(got, r) <= PARITY
        assert torch.allclose(got.norm(dim=-1), torch.ones(len(got)), atol=1e-5)


def test_pylate_layout_equals_colbert_layout(colbert_dirs, texts):
    _, colbert, pylate, _ = colbert_dirs
    a = _load(colbert).multi_vector(texts).vectors
    b = _load(pylate, head="multi_vector").multi_vector(texts).vectors
    for x, y in zip(a, b, strict=True):
        assert max_abs(x, y) <= INVARIANCE


def test_multi_vector_needs_a_projection(colbert_dirs):
    from engine.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="linear.weight"):
        _load(colbert_dirs[0], head="multi_vector")


def test_batch_invariance(colbert_dirs, texts):
    ours = _load(colbert_dirs[1])
    together = ours.multi_vector(texts).vectors
    for i in [*range(6), max(range(len(texts)), key=lambda i: len(texts[i])), len(texts) - 1]:
        assert max_abs(ours.multi_vector([texts[i]]).vectors[0], together[i]) <= INVARIANCE


def test_maxsim_matches_per_pair_loop(colbert_dirs, texts):
    ours = _load(colbert_dirs[1])
    queries = ours.multi_vector(texts[:4]).vectors
    docs = ours.multi_vector(texts).vectors

    def loop(q, d):
        return sum(max(float(qi @ dj) for dj in d) for qi in q)

    for q in queries:
        scores = maxsim(q, docs)
        assert scores.shape == (len(docs),)
        for s, d in zip(scores, docs, strict=True):
            assert abs(float(s) - loop(q, d)) <= INVARIANCE * len(q)
        # One document alone vs inside the packed matrix: the same sum up to fp32 summation order.
        assert float(maxsim(q, docs[3])) == pytest.approx(float(scores[3]), rel=1e-6)
    # A text scores highest against itself (normalised vectors: every query token finds itself).
    assert float(maxsim(docs[5], docs[5])) == pytest.approx(len(docs[5]), abs=1e-4)


def test_engine_multi_vector_through_the_scheduler(colbert_dirs, texts):
    from engine.catalog import Catalog, CatalogEntry
    from engine.engine import Engine
    from engine.errors import UnsupportedTask
    from engine.pool import PoolConfig

    _, colbert, pylate, _ = colbert_dirs
    cat = Catalog()
    cat.add(CatalogEntry(id="colbert", source=f"path:{colbert}", dtype="float32"))
    cat.add(CatalogEntry(id="pylate", source=f"path:{pylate}", task="multi_vector", dtype="float32"))
    direct = _load(colbert).multi_vector(texts).vectors

    async def main():
        engine = Engine(cat, PoolConfig(host_budget_bytes=0))
        try:
            a = await engine.multi_vector("colbert", texts)
            b = await engine.multi_vector("pylate", texts, kind="query")
            with pytest.raises(UnsupportedTask):
                await engine.embed("colbert", texts[:1])
            return a, b
        finally:
            await engine.shutdown()

    a, b = asyncio.run(main())
    for x, y, z in zip(a.vectors, b.vectors, direct, strict=True):
        assert max_abs(x, z) <= INVARIANCE and max_abs(y, z) <= INVARIANCE
