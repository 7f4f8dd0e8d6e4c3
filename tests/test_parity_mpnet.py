"""MPNet vs transformers on tiny random configs (fp32): relative-position bias on every CPU backend.

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

import pytest
import torch

from engine.attention import AttentionBackendName
from engine.errors import UnsupportedArchitecture
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
)
from tests.reference import hf_eager as _hf
from tests.reference import load_fp32 as _load

PARITY = 1e-4
INVARIANCE = 1e-5
PAD = 1
CPU_BACKENDS = [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED,
                AttentionBackendName.SDPA_PADDED]


def _make(make_hf_model, cls_name: str = "MPNetModel", **overrides):
    cfg = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
               max_position_embeddings=514, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
               initializer_range=0.1, pad_token_id=PAD)
    cfg.update(overrides)
    return make_hf_model(cls_name, config_class="MPNetConfig", **cfg)


def _reference_inputs(encoded):
    return padded_inputs(encoded, pad_id=PAD, token_types=False)


@pytest.mark.parametrize("backend", CPU_BACKENDS, ids=lambda b: b.value)
def test_hidden_states_match_transformers(make_hf_model, texts, backend):
    path = _make(make_hf_model)
    ours = _load(path, backend)
    hf = _hf("MPNetModel", path)
    assert_hidden_states_match(ours, hf, texts, PARITY, pad_id=PAD, token_types=False)


def test_the_bias_matters(make_hf_model, texts):
    """Guards the parity test: the same model without the relative bias must not pass it."""
    path = _make(make_hf_model)
    ours = _load(path)
    encoded = ours.tokenizer.encode(texts)
    ref = reference_hidden(_hf("MPNetModel", path), encoded, pad_id=PAD, token_types=False)
    with torch.no_grad():
        ours.backbone.relative_attention_bias.weight.zero_()
    worst = max(max_abs(h, r) for h, r in zip(engine_hidden(ours, encoded), ref, strict=True))
    assert worst > 100 * PARITY


def test_positions_start_after_the_padding_index(make_hf_model):
    ours = _load(_make(make_hf_model))
    assert ours.position_offset == 2
    assert ours.info.max_length == 512


def test_sequence_classification_matches(make_hf_model, texts):
    path = _make(make_hf_model, "MPNetForSequenceClassification", num_labels=3)
    ours = _load(path)
    hf = _hf("MPNetForSequenceClassification", path)
    docs = list(reversed(texts))
    logits, _ = ours.classify(texts, docs)
    encoded = ours.tokenizer.encode_pairs(list(zip(texts, docs)))
    with torch.inference_mode():
        ref = hf(**_reference_inputs(encoded)).logits
    assert logits.shape == (len(texts), 3)
    assert max_abs(logits, ref) <= PARITY


def test_token_classification_matches(make_hf_model, texts):
    path = _make(make_hf_model, "MPNetForTokenClassification", num_labels=5)
    assert_token_logits_match(_load(path), _hf("MPNetForTokenClassification", path), texts, _reference_inputs, PARITY)


def test_masked_lm_checkpoint_loads_as_an_encoder(make_hf_model, texts):
    path = _make(make_hf_model, "MPNetForMaskedLM")
    ours = _load(path)
    encoded = ours.tokenizer.encode(texts)
    ref = reference_hidden(_hf("MPNetForMaskedLM", path).mpnet, encoded, pad_id=PAD, token_types=False)
    for h, r in zip(engine_hidden(ours, encoded), ref, strict=True):
        assert max_abs(h, r) <= PARITY


@pytest.mark.parametrize("backend", CPU_BACKENDS[:2], ids=lambda b: b.value)
def test_batch_invariance(make_hf_model, texts, backend):
    ours = _load(_make(make_hf_model), backend, pooling=PoolingMode.MEAN, normalize=False)
    assert_batch_invariant(ours, texts, INVARIANCE)


def test_varlen_backends_are_refused_for_the_bias(make_hf_model):
    from engine.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="attention bias"):
        _load(_make(make_hf_model), AttentionBackendName.TORCH_VARLEN)


def test_other_bucket_counts_are_refused_by_name(make_hf_model, tmp_path):
    path = copy_with_config(_make(make_hf_model), tmp_path / "model", lambda cfg: cfg.update({"relative_attention_num_buckets": 64}))
    with pytest.raises(UnsupportedArchitecture, match="relative_attention_num_buckets"):
        load_model(path)
