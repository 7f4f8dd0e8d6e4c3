"""DistilBERT vs transformers on tiny random configs (fp32).

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

from functools import partial

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


def _make(make_hf_model, cls_name: str = "DistilBertModel", **overrides):
    cfg = dict(vocab_size=30522, dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=512,
               activation="gelu", dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0,
               initializer_range=0.1)
    cfg.update(overrides)
    return make_hf_model(cls_name, config_class="DistilBertConfig", **cfg)


@pytest.mark.parametrize("backend", [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED],
                         ids=lambda b: b.value)
@pytest.mark.parametrize("sinusoidal", [False, True], ids=["learned", "sinusoidal"])
def test_hidden_states_match_transformers(make_hf_model, texts, backend, sinusoidal):
    path = _make(make_hf_model, sinusoidal_pos_embds=sinusoidal)
    ours = _load(path, backend)
    hf = _hf("DistilBertModel", path)
    assert_hidden_states_match(ours, hf, texts, PARITY, token_types=False)


@pytest.mark.parametrize("num_labels", [1, 3])
def test_sequence_classification_matches(make_hf_model, texts, num_labels):
    path = _make(make_hf_model, "DistilBertForSequenceClassification", num_labels=num_labels)
    ours = _load(path)
    hf = _hf("DistilBertForSequenceClassification", path)
    docs = list(reversed(texts))
    logits, _ = ours.classify(texts, docs)
    encoded = ours.tokenizer.encode_pairs(list(zip(texts, docs)))
    with torch.inference_mode():
        ref = hf(**padded_inputs(encoded, token_types=False)).logits
    assert logits.shape == (len(texts), num_labels)
    assert max_abs(logits, ref) <= PARITY


def test_token_classification_matches(make_hf_model, texts):
    path = _make(make_hf_model, "DistilBertForTokenClassification", num_labels=5)
    assert_token_logits_match(_load(path), _hf("DistilBertForTokenClassification", path), texts, partial(padded_inputs, token_types=False), PARITY)


def test_masked_lm_checkpoint_loads_as_an_encoder(make_hf_model, texts):
    path = _make(make_hf_model, "DistilBertForMaskedLM")
    ours = _load(path)
    hf = _hf("DistilBertForMaskedLM", path)
    encoded = ours.tokenizer.encode(texts)
    ref = reference_hidden(hf.distilbert, encoded, token_types=False)
    for h, r in zip(engine_hidden(ours, encoded), ref, strict=True):
        assert max_abs(h, r) <= PARITY


def test_batch_invariance(make_hf_model, texts):
    ours = _load(_make(make_hf_model), pooling=PoolingMode.MEAN, normalize=False)
    assert_batch_invariant(ours, texts, INVARIANCE)


def test_unsupported_activation_is_refused_by_name(make_hf_model, tmp_path):
    path = copy_with_config(_make(make_hf_model), tmp_path / "model", lambda cfg: cfg.update({"activation": "mish"}))
    with pytest.raises(UnsupportedArchitecture, match="activation='mish'"):
        load_model(path)
