"""Qwen3 / Qwen2 decoder embedders vs transformers on tiny random configs (fp32): causal attention, GQA,
rotary, RMSNorm (+ Qwen3's per-head q/k norms), SwiGLU, last-token pooling.

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

import pytest

from engine.attention import AttentionBackendName
from engine.errors import UnsupportedArchitecture
from engine.heads.pooling import PoolingMode
from engine.loading import load_model
from tests.reference import (
    assert_batch_invariant,
    assert_hidden_states_match,
    copy_with_config,
    max_abs,
    reference_hidden,
    reference_pool,
)
from tests.reference import hf_eager as _hf
from tests.reference import load_fp32 as _load

PARITY = 1e-4
INVARIANCE = 1e-5
FAMILIES = ["Qwen3", "Qwen2"]


def _make(make_hf_model, family: str = "Qwen3", task: str = "Model", **overrides):
    cfg = dict(vocab_size=30522, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, initializer_range=0.1,
               rope_parameters={"rope_type": "default", "rope_theta": 10_000.0}, pad_token_id=0,
               tie_word_embeddings=False)
    if family == "Qwen3":
        cfg["head_dim"] = 16
    cfg.update(overrides)
    return make_hf_model(f"{family}{task}", config_class=f"{family}Config", **cfg)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("backend", [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED],
                         ids=lambda b: b.value)
def test_hidden_states_match_transformers(make_hf_model, texts, family, backend):
    path = _make(make_hf_model, family)
    ours = _load(path, backend)
    hf = _hf(f"{family}Model", path)
    assert_hidden_states_match(ours, hf, texts, PARITY, token_types=False)


@pytest.mark.parametrize("family", FAMILIES)
def test_causal_lm_checkpoint_embeds_with_the_last_token(make_hf_model, texts, family):
    """Qwen3-Embedding ships as *ForCausalLM: the backbone loads, lm_head is ignored, pooling defaults
    to the last token when there is no sentence-transformers metadata."""
    path = _make(make_hf_model, family, "ForCausalLM")
    ours = _load(path, normalize=False)
    assert ours.info.pooling == (PoolingMode.LAST_TOKEN,)
    hf = _hf(f"{family}ForCausalLM", path)
    out = ours.embed(texts)
    ref = reference_pool(reference_hidden(hf.model, ours.tokenizer.encode(texts), token_types=False), "last_token")
    assert max_abs(out.vectors, ref) <= PARITY


def test_batch_invariance(make_hf_model, texts):
    ours = _load(_make(make_hf_model), normalize=False)
    assert_batch_invariant(ours, texts, INVARIANCE)


@pytest.mark.parametrize("field, value", [
    ("use_sliding_window", True),
    ("rope_parameters", {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}),
    ("hidden_act", "mish"),
])
def test_unsupported_config_is_refused_by_name(make_hf_model, tmp_path, field, value):
    path = copy_with_config(_make(make_hf_model), tmp_path / "model", lambda cfg: cfg.update({field: value}))
    with pytest.raises(UnsupportedArchitecture, match=field):
        load_model(path)
