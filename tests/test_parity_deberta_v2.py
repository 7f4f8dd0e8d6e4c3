"""DeBERTa-v2/v3 vs transformers on tiny random configs (fp32): disentangled attention (c2p + p2c from
log-bucketed relative positions) computed per run of equal-length sequences, in the v3 layout (shared
keys, LayerNorm'd relative embeddings, no absolute positions) and the v2 layout (separate position
projections, absolute positions, token types, un-bucketed clamped positions, the conv layer, embed_proj).
`position_buckets=16`, `max_relative_positions=32`: texts of up to 400+ tokens reach the log buckets and
the clamp.

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

import pytest
import torch

from engine.errors import BackendUnavailable, UnsupportedArchitecture
from engine.heads.pooling import PoolingMode
from engine.loading import load_model
from tests.reference import (
    assert_batch_invariant,
    assert_hidden_states_match,
    assert_token_logits_match,
    copy_with_config,
    engine_hidden,
    max_abs,
    padded_inputs,
    reference_hidden,
    serve,
)
from tests.reference import hf_eager as _hf

PARITY = 1e-4
INVARIANCE = 1e-5

V3 = dict(relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16, max_relative_positions=32,
          share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=0)
V2 = dict(relative_attention=True, pos_att_type=["c2p", "p2c"], position_buckets=-1, max_relative_positions=32,
          share_att_key=False, norm_rel_ebd="none", position_biased_input=True, type_vocab_size=2,
          conv_kernel_size=3, conv_act="gelu", embedding_size=48)
C2P_ONLY = dict(V3, pos_att_type=["c2p"], share_att_key=False)
ABSOLUTE = dict(relative_attention=False, pos_att_type=None, position_biased_input=True)
VARIANTS = {"v3": V3, "v2_conv": V2, "c2p_only": C2P_ONLY, "absolute": ABSOLUTE}


def _make(make_hf_model, cls_name: str = "DebertaV2Model", variant: str = "v3", **overrides):
    cfg = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
               max_position_embeddings=512, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
               pooler_dropout=0.0, initializer_range=0.1, pad_token_id=0, **VARIANTS[variant])
    cfg.update(overrides)
    return make_hf_model(cls_name, config_class="DebertaV2Config", **cfg)


def _load(path, **kw):
    return serve(path, **kw)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_hidden_states_match_transformers(make_hf_model, texts, variant):
    path = _make(make_hf_model, variant=variant)
    ours = _load(path)
    assert ours.info.attention_backend == "sdpa_grouped" and "disentangled" in ours.info.attention_reason
    assert_hidden_states_match(ours, _hf("DebertaV2Model", path), texts, PARITY)


def test_the_position_terms_matter(make_hf_model, texts):
    """Guards the parity test: without c2p/p2c the same weights must fail it."""
    path = _make(make_hf_model)
    ours = _load(path)
    encoded = ours.tokenizer.encode(texts)
    ref = reference_hidden(_hf("DebertaV2Model", path), encoded)
    for layer in ours.backbone.encoder.layer:
        layer.attention.self.terms = ()
    worst = max(max_abs(h, r) for h, r in zip(engine_hidden(ours, encoded), ref, strict=True))
    assert worst > 100 * PARITY


@pytest.mark.parametrize("variant", ["v3", "v2_conv"])
def test_sequence_classification_matches(make_hf_model, texts, variant):
    path = _make(make_hf_model, "DebertaV2ForSequenceClassification", variant, num_labels=3)
    ours = _load(path)
    docs = list(reversed(texts))
    logits, _ = ours.classify(texts, docs)
    encoded = ours.tokenizer.encode_pairs(list(zip(texts, docs)))
    with torch.inference_mode():
        ref = _hf("DebertaV2ForSequenceClassification", path)(**padded_inputs(encoded)).logits
    assert logits.shape == (len(texts), 3)
    assert max_abs(logits, ref) <= PARITY


def test_token_classification_matches(make_hf_model, texts):
    path = _make(make_hf_model, "DebertaV2ForTokenClassification", num_labels=5)
    assert_token_logits_match(_load(path), _hf("DebertaV2ForTokenClassification", path), texts, padded_inputs, PARITY)


def test_embeddings_default_to_mean_pooling(make_hf_model, texts):
    path = _make(make_hf_model, "DebertaV2ForMaskedLM")
    ours = _load(path)
    assert ours.info.pooling == (PoolingMode.MEAN,)
    encoded = ours.tokenizer.encode(texts)
    ref = reference_hidden(_hf("DebertaV2ForMaskedLM", path).deberta, encoded)
    assert max_abs(ours.embed(texts).vectors, torch.stack([r.mean(0) for r in ref])) <= PARITY


@pytest.mark.parametrize("variant", ["v3", "v2_conv"])
def test_batch_invariance(make_hf_model, texts, variant):
    ours = _load(_make(make_hf_model, variant=variant), normalize=False)
    assert_batch_invariant(ours, texts, INVARIANCE)


def test_kernel_backends_are_refused(make_hf_model):
    with pytest.raises(BackendUnavailable, match="disentangled attention"):
        _load(_make(make_hf_model), attention_backend="sdpa_padded")


@pytest.mark.parametrize("field, value", [
    ("pos_att_type", ["c2p", "p2p"]),
    ("conv_kernel_size", 4),
    ("norm_rel_ebd", "batch_norm"),
    ("pooler_hidden_size", 32),
    ("hidden_act", "mish"),
])
def test_unsupported_config_is_refused_by_name(make_hf_model, tmp_path, field, value):
    path = copy_with_config(_make(make_hf_model), tmp_path / "model", lambda cfg: cfg.update({field: value}))
    with pytest.raises(UnsupportedArchitecture, match=field):
        load_model(path)


def test_bfloat16_stays_close_to_the_fp32_reference(make_hf_model, texts):
    path = _make(make_hf_model, "DebertaV2ForMaskedLM", variant="v2_conv")
    ours = serve(path, dtype="bfloat16")
    encoded = ours.tokenizer.encode(texts)
    ref = torch.stack([r.mean(0) for r in reference_hidden(_hf("DebertaV2ForMaskedLM", path).deberta, encoded)])
    got = ours.embed(texts).vectors
    assert float(torch.nn.functional.cosine_similarity(got, ref).min()) >= 0.999
