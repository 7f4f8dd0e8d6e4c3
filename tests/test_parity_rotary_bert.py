"""NomicBERT and GTE ("new") vs transformers' NomicBertModel / GteModel on tiny random configs (fp32).

Also the remote-code spellings real checkpoints ship with (contrastors' NomicBERT config and weight names,
Alibaba's "new" GTE): the same weights renamed must give the reference's outputs.

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from engine.attention import AttentionBackendName
from engine.errors import UnsupportedArchitecture
from engine.heads.pooling import PoolingMode
from tests.reference import (
    assert_batch_invariant,
    assert_hidden_states_match,
    assert_token_logits_match,
    copy_with_config,
    max_abs,
    padded_inputs,
    reference_hidden,
)
from tests.reference import hf_eager as _hf
from tests.reference import load_fp32 as _load

PARITY = 1e-4
BACKENDS = [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED, AttentionBackendName.SDPA_PADDED]
FAMILIES = ["NomicBert", "Gte"]


def _make(make_hf_model, family: str, task: str = "Model", **overrides):
    cfg = {"vocab_size": 30522, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
           "num_attention_heads": 4, "max_position_embeddings": 512, "type_vocab_size": 2,
           "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.1,
           "pad_token_id": 0, "rope_parameters": {"rope_type": "default", "rope_theta": 1000.0}}
    cfg.update(overrides)
    return make_hf_model(f"{family}{task}", config_class=f"{family}Config", **cfg)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_match_transformers(make_hf_model, texts, family, backend):
    path = _make(make_hf_model, family)
    ours = _load(path, backend)
    assert ours.info.family == "rotary_bert"
    assert_hidden_states_match(ours, _hf(f"{family}Model", path), texts, PARITY)


def test_gte_without_token_types(make_hf_model, texts):
    """gte-base-en-v1.5 sets type_vocab_size=0: no token-type table at all."""
    path = _make(make_hf_model, "Gte", type_vocab_size=0, rope_parameters={"rope_type": "default",
                                                                           "rope_theta": 160_000.0})
    ours = _load(path)
    assert ours.backbone.embeddings.token_type_embeddings is None
    assert_hidden_states_match(ours, _hf("GteModel", path), texts, PARITY)


@pytest.mark.parametrize("family", FAMILIES)
def test_mean_pooled_embeddings_and_batch_invariance(make_hf_model, texts, family):
    path = _make(make_hf_model, family)
    ours = _load(path, pooling=PoolingMode.MEAN, normalize=False)
    ref = torch.stack([h.mean(0) for h in reference_hidden(_hf(f"{family}Model", path),
                                                           ours.tokenizer.encode(texts))])
    assert max_abs(ours.embed(texts).vectors, ref) <= PARITY
    assert_batch_invariant(ours, texts)


@pytest.mark.parametrize("num_labels", [1, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_sequence_classification(make_hf_model, texts, family, num_labels):
    path = _make(make_hf_model, family, "ForSequenceClassification", num_labels=num_labels)
    ours = _load(path)
    docs = list(reversed(texts))
    logits, _ = ours.classify(texts, docs)
    encoded = ours.tokenizer.encode_pairs(list(zip(texts, docs)))
    with torch.inference_mode():
        ref = _hf(f"{family}ForSequenceClassification", path)(**padded_inputs(encoded)).logits
    assert logits.shape == (len(texts), num_labels)
    assert max_abs(logits, ref) <= PARITY


@pytest.mark.parametrize("family", FAMILIES)
def test_token_classification(make_hf_model, texts, family):
    path = _make(make_hf_model, family, "ForTokenClassification", num_labels=5)
    assert_token_logits_match(_load(path), _hf(f"{family}ForTokenClassification", path), texts)


# --- the other spellings ----------------------------------------------------------------------------
# transformers writes checkpoints in the remote-code tensor names (contrastors' `encoder.layers.N.attn.Wqkv`,
# `mlp.fc11`…; Alibaba's `encoder.layer.N.attention.qkv_proj`, `mlp.up_gate_proj`…), so the tests above
# load those. Here: transformers' in-memory names (q/k/v_proj, gate/up/down_proj), and the remote-code
# config.json spellings (contrastors' `n_embd`, `n_layer`…; GTE's model_type "new").


@pytest.mark.parametrize("family", FAMILIES)
def test_transformers_module_names_load_too(make_hf_model, texts, tmp_path, family):
    src = _make(make_hf_model, family)
    hf = _hf(f"{family}Model", src)
    dst = shutil.copytree(src, tmp_path / "native")
    state = hf.state_dict()
    assert any(k.endswith("self_attn.q_proj.weight") for k in state)
    save_file({k: v.contiguous() for k, v in state.items()}, dst / "model.safetensors")
    assert_hidden_states_match(_load(dst), hf, texts, PARITY)


def _contrastors_nomic(cfg):
    """contrastors' NomicBertConfig for the same model (as nomic-embed-text-v1.5's config.json)."""
    return {"architectures": ["NomicBertModel"], "model_type": "nomic_bert", "activation_function": "swiglu",
            "n_embd": cfg["hidden_size"], "n_head": cfg["num_attention_heads"], "n_inner": cfg["intermediate_size"],
            "n_layer": cfg["num_hidden_layers"], "n_positions": cfg["max_position_embeddings"],
            "vocab_size": cfg["vocab_size"], "type_vocab_size": cfg["type_vocab_size"],
            "layer_norm_epsilon": cfg["layer_norm_eps"], "rotary_emb_base": cfg["rope_parameters"]["rope_theta"],
            "rotary_emb_fraction": 1.0, "rotary_emb_interleaved": False, "rotary_scaling_factor": None,
            "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False, "prenorm": False,
            "causal": False, "pad_token_id": 0}


def _new_gte(cfg):
    """Alibaba's remote-code ("new") config for the same model."""
    return {"architectures": ["NewModel"], "model_type": "new", "hidden_size": cfg["hidden_size"],
            "num_attention_heads": cfg["num_attention_heads"], "num_hidden_layers": cfg["num_hidden_layers"],
            "intermediate_size": cfg["intermediate_size"], "hidden_act": "gelu", "vocab_size": cfg["vocab_size"],
            "max_position_embeddings": cfg["max_position_embeddings"], "type_vocab_size": cfg["type_vocab_size"],
            "layer_norm_eps": cfg["layer_norm_eps"], "rope_theta": cfg["rope_parameters"]["rope_theta"],
            "rope_scaling": None, "position_embedding_type": "rope", "layer_norm_type": "layer_norm",
            "logn_attention_scale": False, "pack_qkv": True, "unpad_inputs": True, "pad_token_id": 1}


REMOTE = {"NomicBert": _contrastors_nomic, "Gte": _new_gte}
UNSUPPORTED = [
    ("NomicBert", "rotary_emb_fraction", 0.5), ("NomicBert", "rotary_emb_interleaved", True),
    ("NomicBert", "prenorm", True), ("NomicBert", "activation_function", "gelu"),
    ("NomicBert", "moe_every_n_layers", 2), ("Gte", "rope_scaling", {"type": "ntk", "factor": 2.0}),
    ("Gte", "layer_norm_type", "rms_norm"), ("Gte", "logn_attention_scale", True),
]


@pytest.mark.parametrize("family", FAMILIES)
def test_remote_code_config(make_hf_model, texts, tmp_path, family):
    src = _make(make_hf_model, family)
    remote = copy_with_config(src, tmp_path / "remote", REMOTE[family])
    assert_hidden_states_match(_load(remote), _hf(f"{family}Model", src), texts, PARITY)


@pytest.mark.parametrize(("family", "field", "value"), UNSUPPORTED)
def test_remote_options_we_lack_fail_naming_the_field(make_hf_model, tmp_path, family, field, value):
    src = _make(make_hf_model, family)
    remote = copy_with_config(src, tmp_path / "remote", lambda cfg: {**REMOTE[family](cfg), field: value})
    with pytest.raises(UnsupportedArchitecture, match=field):
        _load(remote)
