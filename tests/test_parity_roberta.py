"""RoBERTa family (RoBERTa, XLM-RoBERTa, CamemBERT) vs transformers on tiny random configs (fp32).

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from engine.attention import AttentionBackendName
from engine.errors import UnsupportedArchitecture
from engine.heads.pooling import PoolingMode
from engine.loading import load_model
from tests.conftest import tiny_bert_config
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
from tests.reference import load_fp32 as _load

PARITY = 1e-4
INVARIANCE = 1e-5
PAD = 1
FAMILIES = ["Roberta", "XLMRoberta", "Camembert"]


def _tiny(**overrides) -> dict:
    # type_vocab_size=1 as in real RoBERTa checkpoints; positions start at PAD + 1.
    return tiny_bert_config(pad_token_id=PAD, type_vocab_size=1, **overrides)


def _make(make_hf_model, family: str, task: str = "Model", **overrides):
    return make_hf_model(f"{family}{task}", config_class=f"{family}Config", **_tiny(**overrides))


def _reference_inputs(encoded):
    # RoBERTa tokenizers emit no token types; pad with the padding id so positions stay in range.
    return padded_inputs(encoded, pad_id=PAD, token_types=False)


@pytest.mark.parametrize("family", FAMILIES)
def test_hidden_states_match_transformers(make_hf_model, texts, family):
    path = _make(make_hf_model, family)
    ours = _load(path)
    hf = getattr(transformers, f"{family}Model").from_pretrained(path, attn_implementation="eager").eval()
    assert_hidden_states_match(ours, hf, texts, PARITY, pad_id=PAD, token_types=False)


def test_positions_are_offset_and_bound_the_max_length(make_hf_model):
    ours = _load(_make(make_hf_model, "Roberta"))
    assert ours.position_offset == PAD + 1
    assert ours.info.max_length == 512 - PAD - 1
    out = ours.embed(["word " * 1000])
    assert out.truncated == [True] and out.token_counts == [510]


@pytest.mark.parametrize("family", ["Roberta", "XLMRoberta"])
def test_sequence_classification_matches(make_hf_model, texts, family):
    path = _make(make_hf_model, family, "ForSequenceClassification", num_labels=3)
    ours = _load(path)
    hf = getattr(transformers, f"{family}ForSequenceClassification").from_pretrained(
        path, attn_implementation="eager").eval()
    docs = list(reversed(texts))
    logits, _ = ours.classify(texts, docs)
    encoded = ours.tokenizer.encode_pairs(list(zip(texts, docs)))
    with torch.inference_mode():
        ref = hf(**_reference_inputs(encoded)).logits
    assert logits.shape == (len(texts), 3)
    assert max_abs(logits, ref) <= PARITY


def test_token_classification_matches(make_hf_model, texts):
    path = _make(make_hf_model, "XLMRoberta", "ForTokenClassification", num_labels=5)
    assert_token_logits_match(_load(path), transformers.XLMRobertaForTokenClassification.from_pretrained(path, attn_implementation="eager").eval(), texts, _reference_inputs, PARITY)


def test_masked_lm_checkpoint_loads_as_an_encoder(make_hf_model, texts):
    """An *ForMaskedLM checkpoint (how many base models ship) embeds with its `roberta.` backbone."""
    path = _make(make_hf_model, "Camembert", "ForMaskedLM")
    ours = _load(path, pooling=PoolingMode.MEAN, normalize=False)
    hf = transformers.CamembertForMaskedLM.from_pretrained(path, attn_implementation="eager").eval()
    encoded = ours.tokenizer.encode(texts)
    ref = reference_hidden(hf.roberta, encoded, pad_id=PAD, token_types=False)
    for h, r in zip(engine_hidden(ours, encoded), ref, strict=True):
        assert max_abs(h, r) <= PARITY


@pytest.mark.parametrize("backend", [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED],
                         ids=lambda b: b.value)
def test_batch_invariance(make_hf_model, texts, backend):
    ours = _load(_make(make_hf_model, "XLMRoberta"), backend, pooling=PoolingMode.MEAN, normalize=False)
    assert_batch_invariant(ours, texts, INVARIANCE)


def test_relative_positions_are_refused_by_name(make_hf_model, tmp_path):
    path = copy_with_config(_make(make_hf_model, "Roberta"), tmp_path / "model", lambda cfg: cfg.update({"position_embedding_type": "relative_key_query"}))
    with pytest.raises(UnsupportedArchitecture, match="position_embedding_type"):
        load_model(path)
