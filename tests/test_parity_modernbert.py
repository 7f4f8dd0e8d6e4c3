"""ModernBERT vs transformers on tiny random configs (fp32): rotary with per-layer-type theta, alternating
global / sliding-window attention on sequences far longer than the window, GeGLU, heads.

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
LOCAL_ATTENTION = 16  # ±8 tokens; the texts run to ~400 tokens


def _make(make_hf_model, cls_name: str = "ModernBertModel", **overrides):
    cfg = dict(vocab_size=30522, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
               local_attention=LOCAL_ATTENTION, global_attn_every_n_layers=3, global_rope_theta=160_000.0,
               local_rope_theta=10_000.0, pad_token_id=0, bos_token_id=101, eos_token_id=102, cls_token_id=101,
               sep_token_id=102, initializer_range=0.1)
    cfg.update(overrides)
    return make_hf_model(cls_name, config_class="ModernBertConfig", **cfg)


@pytest.mark.parametrize("backend", [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED,
                                     AttentionBackendName.SDPA_PADDED], ids=lambda b: b.value)
def test_hidden_states_match_transformers(make_hf_model, texts, backend):
    path = _make(make_hf_model)
    ours = _load(path, backend)
    assert ours.backbone.config.layer_types == ("full_attention", "sliding_attention", "sliding_attention",
                                                "full_attention")
    hf = _hf("ModernBertModel", path)
    lengths = assert_hidden_states_match(ours, hf, texts, PARITY, token_types=False)
    assert sum(n > 4 * LOCAL_ATTENTION for n in lengths) >= 3


def test_the_window_and_thetas_matter(make_hf_model, texts, tmp_path):
    """Guards the parity test: a model attending globally everywhere must not also pass it."""
    path = _make(make_hf_model)
    hf = _hf("ModernBertModel", path)

    def all_global(cfg):
        cfg["layer_types"] = ["full_attention"] * 4

    wrong = _load(copy_with_config(path, tmp_path / "model", all_global))
    encoded = wrong.tokenizer.encode(texts)
    ref = reference_hidden(hf, encoded, token_types=False)
    worst = max(max_abs(h, r) for h, r in zip(engine_hidden(wrong, encoded), ref, strict=True))
    assert worst > 100 * PARITY


def test_legacy_config_fields_load_the_same_model(make_hf_model, texts, tmp_path):
    """Checkpoints saved before transformers 5 carry global_attn_every_n_layers and *_rope_theta only."""
    path = _make(make_hf_model, global_attn_every_n_layers=2, local_rope_theta=5_000.0)

    def legacy(cfg):
        del cfg["layer_types"], cfg["rope_parameters"]
        cfg.update(global_attn_every_n_layers=2, global_rope_theta=160_000.0, local_rope_theta=5_000.0)

    new, old = _load(path), _load(copy_with_config(path, tmp_path / "model", legacy))
    assert old.backbone.config == new.backbone.config
    assert new.backbone.config.local_rope_theta == 5_000.0
    assert max_abs(old.embed(texts).vectors, new.embed(texts).vectors) == 0.0


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_classification_matches(make_hf_model, texts, pooling):
    path = _make(make_hf_model, "ModernBertForSequenceClassification", num_labels=3, classifier_pooling=pooling)
    ours = _load(path)
    hf = _hf("ModernBertForSequenceClassification", path)
    docs = list(reversed(texts))
    logits, _ = ours.classify(texts, docs)
    encoded = ours.tokenizer.encode_pairs(list(zip(texts, docs)))
    with torch.inference_mode():
        ref = hf(**padded_inputs(encoded, token_types=False)).logits
    assert logits.shape == (len(texts), 3)
    assert max_abs(logits, ref) <= PARITY


def test_token_classification_matches(make_hf_model, texts):
    path = _make(make_hf_model, "ModernBertForTokenClassification", num_labels=5)
    assert_token_logits_match(_load(path), _hf("ModernBertForTokenClassification", path), texts, partial(padded_inputs, token_types=False), PARITY)


def test_masked_lm_checkpoint_loads_as_an_encoder(make_hf_model, texts):
    path = _make(make_hf_model, "ModernBertForMaskedLM")
    ours = _load(path)
    hf = _hf("ModernBertForMaskedLM", path)
    encoded = ours.tokenizer.encode(texts)
    ref = reference_hidden(hf.model, encoded, token_types=False)
    for h, r in zip(engine_hidden(ours, encoded), ref, strict=True):
        assert max_abs(h, r) <= PARITY
    assert ours.info.max_length == 512  # the tokenizer's model_max_length, under the 8192 position limit


@pytest.mark.parametrize("backend", [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED],
                         ids=lambda b: b.value)
def test_batch_invariance(make_hf_model, texts, backend):
    ours = _load(_make(make_hf_model), backend, pooling=PoolingMode.MEAN, normalize=False)
    assert_batch_invariant(ours, texts, INVARIANCE)


@pytest.mark.parametrize("field, value", [
    ("classifier_pooling", "max"),
    ("hidden_activation", "mish"),
    ("rope_parameters", {"full_attention": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}),
])
def test_unsupported_config_is_refused_by_name(make_hf_model, tmp_path, field, value):
    path = copy_with_config(_make(make_hf_model), tmp_path / "model", lambda cfg: cfg.update({field: value}))
    with pytest.raises(UnsupportedArchitecture, match=field):
        load_model(path)
