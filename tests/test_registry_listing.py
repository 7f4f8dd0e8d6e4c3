"""Registry listing (families -> architectures -> heads), task overrides, and the default catalog."""

from __future__ import annotations

import pytest

from engine.catalog import Catalog
from engine.errors import ModelLoadError, UnsupportedTask
from engine.loading import LoadOptions, load_model
from engine.registry import ARCHITECTURES, Task, families, task_override


def test_families_list_every_architecture_with_its_heads():
    listing = families()
    assert sorted(a for archs in listing.values() for a in archs) == sorted(ARCHITECTURES)
    assert set(listing) == {"bert", "roberta", "distilbert", "modernbert", "mpnet", "qwen3", "deberta_v2",
                            "rotary_bert"}
    assert listing["bert"]["BertForMaskedLM"] == ["embed", "sparse_embed"]
    assert listing["bert"]["HF_ColBERT"] == ["multi_vector"]
    assert listing["modernbert"]["ModernBertForMaskedLM"] == ["embed", "sparse_embed"]
    assert listing["bert"]["BertForTokenClassification"] == ["token_classification"]
    assert "sparse_embed" not in listing["qwen3"]["Qwen3ForCausalLM"]  # no masked-LM head
    assert listing["qwen3"]["Qwen3ForCausalLM"] == ["embed", "sequence_classification"]  # yes/no reranking
    assert listing["deberta_v2"]["DebertaV2ForSequenceClassification"] == ["sequence_classification"]
    # NomicBERT / GTE under transformers' names and the remote-code names checkpoints ship with.
    for arch in ("NomicBertModel", "GteModel", "NewModel"):
        assert listing["rotary_bert"][arch] == ["embed", "multi_vector"]
    assert listing["rotary_bert"]["NewForSequenceClassification"] == ["sequence_classification"]


def test_task_override_names():
    assert task_override("sparse") is Task.SPARSE_EMBED
    assert task_override("multi_vector") is Task.MULTI_VECTOR
    with pytest.raises(UnsupportedTask, match="valid: embed, sparse"):
        task_override("ner")


def test_sparse_on_a_checkpoint_without_an_mlm_head_fails_clearly(make_hf_model):
    with pytest.raises(ModelLoadError, match="cls.predictions"):
        load_model(make_hf_model("BertModel"), LoadOptions(dtype="float32", task="sparse"))


def test_default_catalog_has_a_model_per_family_and_maps_load_tasks():
    catalog = Catalog.default()
    for model_id in ("multilingual-e5-small", "all-mpnet-base-v2", "gte-modernbert-base", "distilbert-sst-2",
                     "Qwen3-Embedding-0.6B", "splade-cocondenser-ensembledistil", "nomic-embed-text-v1.5",
                     "gte-multilingual-base", "gte-multilingual-reranker-base", "colbertv2.0",
                     "mxbai-rerank-base-v1", "Qwen3-Reranker-0.6B"):
        assert catalog.get(model_id).source.startswith("hf:")
    options = {e.id: e.load_options("cpu", "auto", None).task for e in catalog.entries.values()}
    assert options["splade-cocondenser-ensembledistil"] == "sparse"
    assert options["colbertv2.0"] == "multi_vector"
    assert options["all-MiniLM-L6-v2"] is None  # the architecture decides
    assert catalog.get("Qwen/Qwen3-Embedding-0.6B").query_prompt.endswith("\nQuery:")
