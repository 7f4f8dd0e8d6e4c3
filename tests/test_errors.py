"""Bad input gets a clear, typed error; edge cases behave as documented."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.errors import (
    BackendUnavailable,
    InvalidInput,
    ModelConfigError,
    ModelLoadError,
    UnsupportedArchitecture,
    UnsupportedTask,
)
from engine.loading import LoadOptions, load_model
from tests.reference import serve


@pytest.fixture(scope="module")
def model(minilm_dir):
    return serve(minilm_dir)


def test_empty_list_is_rejected(model):
    with pytest.raises(InvalidInput, match="empty"):
        model.embed([])


@pytest.mark.parametrize("bad", [[1, "x"], ["x", None], [b"bytes"]])
def test_non_string_items_are_rejected_with_their_index(model, bad):
    with pytest.raises(InvalidInput, match=r"texts\[\d\] must be a string"):
        model.embed(bad)


def test_bare_string_is_rejected_at_the_engine(model):
    with pytest.raises(InvalidInput, match="single string"):
        model.embed("not a list")


def test_empty_string_embeds_like_special_tokens_only(model):
    out = model.embed(["", "x"])
    assert out.token_counts[0] == 2  # [CLS] [SEP]
    assert out.vectors.shape == (2, 384)
    assert abs(float(out.vectors[0].norm()) - 1) < 1e-5


def test_text_over_max_length_is_truncated_and_flagged(model):
    out = model.embed(["word " * 2000, "short"])
    assert out.truncated == [True, False]
    assert out.token_counts == [256, 3]


def test_bad_dimensions(model):
    with pytest.raises(InvalidInput, match="between 1 and 384"):
        model.embed(["x"], dimensions=1000)


def test_wrong_task(model):
    with pytest.raises(UnsupportedTask):
        model.token_logits(["x"])


def _copy(src, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def test_unknown_architecture_lists_supported(make_hf_model, tmp_path):
    path = _copy(make_hf_model("BertModel"), tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["architectures"] = ["FancyNewModel"]
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitecture, match="FancyNewModel.*supported: .*BertModel"):
        load_model(path)


def test_unsupported_config_field_is_named(make_hf_model, tmp_path):
    path = _copy(make_hf_model("BertModel"), tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["position_embedding_type"] = "relative_key"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitecture, match="position_embedding_type"):
        load_model(path)


def test_missing_weights(make_hf_model, tmp_path):
    path = _copy(make_hf_model("BertModel"), tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights found"):
        load_model(path)


def test_corrupt_weights(make_hf_model, tmp_path):
    path = _copy(make_hf_model("BertModel"), tmp_path)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model(path)


def test_corrupt_pytorch_bin(make_hf_model, tmp_path):
    path = _copy(make_hf_model("BertModel", safe=False), tmp_path)
    (path / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model(path)


def test_weights_of_the_wrong_shape(make_hf_model, tmp_path):
    path = _copy(make_hf_model("BertModel"), tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["intermediate_size"] = 96
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="has shape"):
        load_model(path)


def test_missing_config_and_tokenizer(make_hf_model, tmp_path):
    path = _copy(make_hf_model("BertModel"), tmp_path)
    (path / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer.json is missing"):
        load_model(path)
    (path / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="config.json is missing"):
        load_model(path)


def test_unknown_attention_backend_lists_valid_ones(minilm_dir):
    with pytest.raises(BackendUnavailable, match="valid: .*sdpa_grouped"):
        load_model(minilm_dir, LoadOptions(attention_backend="magic"))
    with pytest.raises(BackendUnavailable, match="CUDA only"):
        load_model(minilm_dir, LoadOptions(attention_backend="flash_varlen"))


def test_fp16_on_cpu_is_refused_as_a_server_misconfiguration(minilm_dir):
    """The operator's setting, not the caller's input: a load failure (HTTP 503), never an InvalidInput (400)."""
    with pytest.raises(ModelConfigError, match="CUDA only") as refused:
        load_model(minilm_dir, LoadOptions(dtype="float16"))
    assert not isinstance(refused.value, InvalidInput) and isinstance(refused.value, ModelLoadError)
