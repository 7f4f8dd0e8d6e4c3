"""Qwen3-Reranker-style scoring: a causal LM's "yes" - "no" next-token logit on the last token, vs
transformers' full LM logits, on tiny random Qwen3ForCausalLM checkpoints (fp32) with the MiniLM tokenizer
(its "yes"/"no" word pieces stand in for Qwen's tokens).

Thresholds: max abs diff ≤ 1e-4 against the reference; ≤ 1e-5 for batch invariance.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import InvalidInput, ModelConfigError, ModelLoadError
from engine.heads.specs import Head
from engine.heads.yes_no import QWEN3_RERANKER_TEMPLATE
from engine.registry import Task, heads
from engine.tokenization import Encoded, PairTemplate
from tests.reference import max_abs, padded_inputs, serve

PARITY = 1e-4
INVARIANCE = 1e-5
YES, NO = 2748, 2053  # the MiniLM tokenizer's ids of "yes" and "no"


def _make(make_hf_model, tied: bool = False, **overrides):
    cfg = dict(vocab_size=30522, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, head_dim=16, max_position_embeddings=512, rms_norm_eps=1e-6,
               initializer_range=0.1, rope_parameters={"rope_type": "default", "rope_theta": 10_000.0},
               pad_token_id=0, tie_word_embeddings=tied)
    cfg.update(overrides)
    return make_hf_model("Qwen3ForCausalLM", config_class="Qwen3Config", seed=3, **cfg)


def _load(path, **kw):
    return serve(path, head=Head.YES_NO_RERANK.value, **kw)


@torch.inference_mode()
def _reference(path, encoded) -> torch.Tensor:
    """[N, 2] (no, yes) logits of the last real token, from transformers' full [B, L, V] logits."""
    hf = transformers.Qwen3ForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    logits = hf(**padded_inputs(encoded, token_types=False)).logits  # right padding: causal, so harmless
    last = logits[torch.arange(len(encoded)), torch.tensor([len(e) - 1 for e in encoded])]  # [N, V]
    return last[:, [NO, YES]]


@pytest.mark.parametrize("tied", [False, True], ids=["lm_head", "tied"])
def test_yes_minus_no_matches_the_full_lm_logits(make_hf_model, texts, tied):
    path = _make(make_hf_model, tied)
    if tied:
        assert not any(k.startswith("lm_head") for k in load_file(path / "model.safetensors"))
    ours = _load(path)
    assert ours.info.task is Task.SEQUENCE_CLASSIFICATION and ours.info.output_dim == 1
    assert ours.head.rows.weight.shape == (2, 64)  # two rows of the LM head, not the vocabulary
    encoded = ours.tokenizer.encode(texts)
    lengths = [len(e) for e in encoded]
    assert min(lengths) <= 3 and max(lengths) >= 300
    logits, _ = ours.classify(texts)
    ref = _reference(path, encoded)
    assert logits.shape == (len(texts), 1)
    assert max_abs(logits[:, 0], ref[:, 1] - ref[:, 0]) <= PARITY
    # What the rerank tool reports for a one-logit model: softmax over (no, yes), probability of yes.
    assert max_abs(torch.sigmoid(logits[:, 0]), torch.softmax(ref, dim=-1)[:, 1]) <= PARITY


def test_batch_invariance(make_hf_model, texts):
    ours = _load(_make(make_hf_model))
    together, _ = ours.classify(texts)
    for i, t in enumerate(texts):
        alone, _ = ours.classify([t])
        assert max_abs(alone[0], together[i]) <= INVARIANCE


def test_pair_template_keeps_its_tail_when_the_document_is_truncated(make_hf_model):
    template = PairTemplate.parse("question: {query} passage: {document} [SEP] answer :")
    ours = _load(_make(make_hf_model), max_length=24)
    tail = ours.tokenizer.encode_template(template, [("q", "d")])[0].ids[-3:]
    short, long = ours.tokenizer.encode_template(template, [("a fox", "jumps"), ("a fox", "word " * 100)])
    assert not short.truncated and long.truncated and len(long) == 24
    assert long.ids[-3:] == tail == short.ids[-3:]
    assert long.ids[:len(short) - 4] == short.ids[:len(short) - 4]  # the document is cut, not the prompt


def test_engine_classify_formats_pairs_with_the_template(make_hf_model, tmp_path):
    """Through the engine, as the rerank tool calls it: queries and documents become one prompt each; the
    reference tokenises the same prompt with transformers' tokenizer and scores it with the full LM."""
    path = _make(make_hf_model)
    catalog = Catalog()
    catalog.add(CatalogEntry(id="tiny-qwen-reranker", source=f"path:{path}", task="rerank",
                             load_task=Head.YES_NO_RERANK.value, pair_template=QWEN3_RERANKER_TEMPLATE, dtype="float32"))
    query = "which animal jumps over the dog?"
    docs = ["the quick brown fox jumps over the lazy dog", "tokens per second", "",
            " ".join(["packed batches of variable length"] * 40)]

    async def main():
        engine = Engine(catalog)
        try:
            return await engine.classify("tiny-qwen-reranker", [query] * len(docs), docs)
        finally:
            await engine.shutdown()

    out = asyncio.run(main())
    hf_tok = transformers.AutoTokenizer.from_pretrained(path)
    head, _, tail = QWEN3_RERANKER_TEMPLATE.partition("{document}")
    encoded = []
    for d in docs:
        ids = (hf_tok(head.replace("{query}", query) + d, add_special_tokens=False)["input_ids"]
               + hf_tok(tail, add_special_tokens=False)["input_ids"])
        encoded.append(Encoded(ids=ids, type_ids=[0] * len(ids), offsets=[], special=[], truncated=False))
    assert out.token_counts == [len(e) for e in encoded]
    ref = _reference(path, encoded)
    assert max_abs(out.logits[:, 0], ref[:, 1] - ref[:, 0]) <= PARITY


def test_template_models_need_pairs(make_hf_model):
    ours = _load(_make(make_hf_model), pair_template=QWEN3_RERANKER_TEMPLATE)
    with pytest.raises(InvalidInput, match="send pairs"):
        ours.classify(["a text alone"])


def test_catalog_entry_matches_the_model_card_template():
    entry = Catalog.default().get("Qwen/Qwen3-Reranker-0.6B")
    assert entry.task == "rerank" and entry.pair_template == QWEN3_RERANKER_TEMPLATE
    options = entry.load_options("cpu", "auto", None)
    assert options.head == Head.YES_NO_RERANK.value and options.max_length == 8192
    assert Head.YES_NO_RERANK in heads("Qwen3ForCausalLM")


@pytest.mark.parametrize("template", ["{document} then {query}", "no placeholders", "{query} {query} {document}"])
def test_bad_templates_are_refused(template):
    with pytest.raises(ValueError, match="pair_template"):
        CatalogEntry.from_dict({"id": "x", "source": "path:/x", "pair_template": template})


def test_untied_checkpoint_without_lm_head_fails_clearly(make_hf_model, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(_make(make_hf_model), path)
    state = load_file(path / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("lm_head")}, path / "model.safetensors")
    with pytest.raises(ModelLoadError, match="lm_head.weight.*tie_word_embeddings"):
        _load(path)


def test_tokenizer_without_the_answer_token_fails_clearly(make_hf_model, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(_make(make_hf_model), path)
    tok = json.loads((path / "tokenizer.json").read_text())
    del tok["model"]["vocab"]["yes"]
    (path / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ModelLoadError, match="'yes' as a single token"):
        _load(path)


def test_encoders_have_no_yes_no_head(make_hf_model):
    with pytest.raises(ModelConfigError, match="cannot be loaded with the yes_no_rerank head"):
        _load(make_hf_model("BertModel"))


def test_bfloat16_stays_close_to_the_fp32_reference(make_hf_model, texts):
    path = _make(make_hf_model, tied=True)
    ours = serve(path, dtype="bfloat16", head=Head.YES_NO_RERANK.value)
    logits, _ = ours.classify(texts)
    ref = _reference(path, ours.tokenizer.encode(texts))
    assert max_abs(torch.sigmoid(logits[:, 0]), torch.softmax(ref, dim=-1)[:, 1]) <= 0.02
