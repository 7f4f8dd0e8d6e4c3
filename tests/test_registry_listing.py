"""Registry listing (families -> architectures -> heads), task overrides, and the default catalog."""

from __future__ import annotations

import pytest

from engine.catalog import Catalog
from engine.errors import ModelConfigError, UnsupportedTask
from engine.heads.specs import HEADS, Head, head_for_catalog_task, head_named
from engine.loading import LoadOptions, load_model
from engine.models.family import BUILDERS, Backbone
from engine.registry import ARCHITECTURES, families


def test_families_list_every_architecture_with_its_heads():
    listing = families()
    assert sorted(a for archs in listing.values() for a in archs) == sorted(ARCHITECTURES)
    assert set(listing) == {"bert", "roberta", "distilbert", "modernbert", "mpnet", "qwen3", "deberta_v2",
                            "rotary_bert"}
    assert listing["bert"]["BertForMaskedLM"] == ["embed", "sparse"]
    assert listing["bert"]["HF_ColBERT"] == ["multi_vector"]
    assert listing["modernbert"]["ModernBertForMaskedLM"] == ["embed", "sparse"]
    assert listing["bert"]["BertForTokenClassification"] == ["token_classification"]
    assert "sparse" not in listing["qwen3"]["Qwen3ForCausalLM"]  # no masked-LM head
    assert listing["qwen3"]["Qwen3ForCausalLM"] == ["embed", "yes_no_rerank"]  # yes/no reranking
    assert listing["deberta_v2"]["DebertaV2ForSequenceClassification"] == ["sequence_classification"]
    # NomicBERT / GTE under transformers' names and the remote-code names checkpoints ship with.
    for arch in ("NomicBertModel", "GteModel", "NewModel"):
        assert listing["rotary_bert"][arch] == ["embed", "multi_vector"]
    assert listing["rotary_bert"]["NewForSequenceClassification"] == ["sequence_classification"]


def test_head_names_and_catalog_tasks():
    assert head_named("sparse") is Head.SPARSE and head_named("sparse_embed") is Head.SPARSE
    assert head_named("multi_vector") is Head.MULTI_VECTOR
    with pytest.raises(UnsupportedTask, match="valid: embed, sequence_classification"):
        head_named("ner")
    assert head_for_catalog_task("sparse") is Head.SPARSE and head_for_catalog_task("multi_vector") is Head.MULTI_VECTOR
    assert head_for_catalog_task("embed") is None and head_for_catalog_task("rerank") is None


def test_every_declared_head_is_buildable():
    """The family contract is declared, not probed: each architecture's heads are generic heads or heads its
    family declares, and each family-declared head overrides its builder."""
    for arch, entry in ARCHITECTURES.items():
        family = entry.backbone_class()
        assert issubclass(family, Backbone), arch
        for head in entry.heads:
            if HEADS[head].family_builder:
                assert head in family.heads, (arch, head)
        for head in family.heads:
            builder = BUILDERS[head]
            assert getattr(family, builder) is not getattr(Backbone, builder), (family.__name__, builder)


def test_a_head_the_architecture_lacks_is_a_load_failure(make_hf_model):
    """Asking a bare BertModel checkpoint for SPLADE is the operator's misconfiguration: a load failure naming
    what the architecture supports (HTTP 503), not a caller error."""
    with pytest.raises(ModelConfigError, match="cannot be loaded with the sparse head; they support embed, multi"):
        load_model(make_hf_model("BertModel"), LoadOptions(dtype="float32", head="sparse"))


def test_default_catalog_has_a_model_per_family_and_maps_load_tasks():
    catalog = Catalog.default()
    for model_id in ("multilingual-e5-small", "all-mpnet-base-v2", "gte-modernbert-base", "distilbert-sst-2",
                     "Qwen3-Embedding-0.6B", "splade-cocondenser-ensembledistil", "nomic-embed-text-v1.5",
                     "gte-multilingual-base", "gte-multilingual-reranker-base", "colbertv2.0",
                     "mxbai-rerank-base-v1", "Qwen3-Reranker-0.6B"):
        assert catalog.get(model_id).source.startswith("hf:")
    options = {e.id: e.load_options("cpu", "auto", None).head for e in catalog.entries.values()}
    assert options["splade-cocondenser-ensembledistil"] is Head.SPARSE
    assert options["colbertv2.0"] is Head.MULTI_VECTOR
    assert options["all-MiniLM-L6-v2"] is None  # the architecture decides
    assert catalog.get("Qwen/Qwen3-Embedding-0.6B").query_prompt.endswith("\nQuery:")
