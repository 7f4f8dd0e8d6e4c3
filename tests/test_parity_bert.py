"""BERT family vs transformers on tiny random configs (fp32): every head, every CPU attention backend.

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from engine.attention import AttentionBackendName
from engine.batch import pack
from engine.heads.pooling import PoolingMode
from tests.reference import (
    assert_batch_invariant,
    assert_token_logits_match,
    max_abs,
    padded_inputs,
    reference_hidden,
    reference_pool,
)
from tests.reference import load_fp32 as _load

PARITY = 1e-4
INVARIANCE = 1e-5
CPU_BACKENDS = [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED,
                AttentionBackendName.SDPA_PADDED]


@pytest.mark.parametrize("backend", CPU_BACKENDS, ids=lambda b: b.value)
def test_hidden_states_match_transformers(make_hf_model, texts, backend):
    path = make_hf_model("BertModel")
    ours = _load(path, backend)
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    encoded = ours.tokenizer.encode(texts)
    lengths = [len(e) for e in encoded]
    assert len(texts) >= 16 and min(lengths) <= 3 and max(lengths) >= 300
    ref = reference_hidden(hf, encoded)
    batch = ours.make_batch(encoded)
    attn_meta = ours.attention.prepare(batch)
    from engine.models.layers import AttentionContext

    with torch.inference_mode():
        hidden = ours.backbone(batch, AttentionContext(ours.attention, attn_meta))
    for h, r in zip(hidden.split(lengths), ref, strict=True):
        assert max_abs(h, r) <= PARITY


def test_single_token_and_raw_id_sequences(make_hf_model):
    """Length-1 sequences (possible only below the tokenizer) go through the packed path too."""
    path = make_hf_model("BertModel")
    ours = _load(path)
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(1000, 30000, (n,), generator=g).tolist() for n in (1, 7, 1, 300, 2, 64)]
    batch = pack(seqs)
    from engine.models.layers import AttentionContext

    with torch.inference_mode():
        hidden = ours.backbone(batch, AttentionContext(ours.attention, ours.attention.prepare(batch)))
        for h, ids in zip(hidden.split([len(s) for s in seqs]), seqs, strict=True):
            ref = hf(input_ids=torch.tensor([ids])).last_hidden_state[0]
            assert max_abs(h, ref) <= PARITY


@pytest.mark.parametrize("mode", list(PoolingMode), ids=lambda m: m.value)
def test_pooling_matches_reference(make_hf_model, texts, mode):
    path = make_hf_model("BertModel")
    ours = _load(path, pooling=mode, normalize=False)
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    out = ours.embed(texts)
    ref = reference_pool(reference_hidden(hf, ours.tokenizer.encode(texts)), mode.value)
    assert out.vectors.shape == ref.shape
    assert max_abs(out.vectors, ref) <= PARITY


def test_normalize_and_matryoshka(make_hf_model, texts):
    path = make_hf_model("BertModel")
    ours = _load(path, pooling=PoolingMode.CLS, normalize=True)
    full = ours.embed(texts, normalize=False).vectors
    short = ours.embed(texts, dimensions=16).vectors
    assert short.shape == (len(texts), 16)
    assert torch.allclose(short.norm(dim=-1), torch.ones(len(texts)), atol=1e-5)
    expected = torch.nn.functional.normalize(full[:, :16], dim=-1)
    assert max_abs(short, expected) <= 1e-6


@pytest.mark.parametrize("num_labels", [1, 3])
def test_sequence_classification_matches(make_hf_model, texts, num_labels):
    path = make_hf_model("BertForSequenceClassification", num_labels=num_labels)
    ours = _load(path)
    hf = transformers.BertForSequenceClassification.from_pretrained(path, attn_implementation="eager").eval()
    queries = texts
    docs = list(reversed(texts))
    logits, truncated = ours.classify(queries, docs)
    encoded = ours.tokenizer.encode_pairs(list(zip(queries, docs)))
    with torch.inference_mode():
        ref = hf(**padded_inputs(encoded)).logits
    assert logits.shape == (len(texts), num_labels)
    assert max_abs(logits, ref) <= PARITY
    # Pairs use token type 1 for the second segment: the reference agrees only if we honour it.
    assert any(1 in e.type_ids for e in encoded)
    assert truncated == [e.truncated for e in encoded]


def test_token_classification_matches(make_hf_model, texts):
    path = make_hf_model("BertForTokenClassification", num_labels=5)
    results = assert_token_logits_match(_load(path), transformers.BertForTokenClassification.from_pretrained(path, attn_implementation="eager").eval(), texts, padded_inputs, PARITY)
    # Character offsets survive for NER: each non-special token maps into its text.
    for text, r in zip(texts, results, strict=True):
        for (s, e), special in zip(r.encoded.offsets, r.encoded.special, strict=True):
            assert special or 0 <= s < e <= len(text)


@pytest.mark.parametrize("backend", CPU_BACKENDS, ids=lambda b: b.value)
def test_batch_invariance(make_hf_model, texts, backend):
    path = make_hf_model("BertModel")
    ours = _load(path, backend, pooling=PoolingMode.MEAN, normalize=False)
    assert_batch_invariant(ours, texts, INVARIANCE)


def test_pytorch_bin_checkpoint_loads_identically(make_hf_model, texts):
    safe = _load(make_hf_model("BertModel", safe=True, seed=3))
    binary = _load(make_hf_model("BertModel", safe=False, seed=3))
    assert max_abs(safe.embed(texts).vectors, binary.embed(texts).vectors) == 0.0
