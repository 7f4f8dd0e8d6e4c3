"""CUDA parity for the flash-attn, torch varlen and padded SDPA backends (run by scripts/gpu_check.sh).

Skipped where there is no CUDA device: CI machines have none. Thresholds: fp32 ≤ 1e-4 max abs vs the
reference; fp16/bf16 cosine ≥ 0.999 vs the fp32 reference and backends agreeing with each other.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from engine.attention import AttentionBackendName
from engine.heads.pooling import PoolingMode
from engine.offline import OfflineModel
from tests.reference import max_abs, reference_hidden, reference_pool

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

VARLEN = [AttentionBackendName.FLASH_VARLEN, AttentionBackendName.TORCH_VARLEN, AttentionBackendName.SDPA_PADDED]


def _reference(path, texts, tokenizer):
    hf = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    return reference_pool(reference_hidden(hf, tokenizer.encode(texts)), "mean")


def test_fp32_padded_sdpa_on_cuda(make_hf_model, texts):
    path = make_hf_model("BertModel")
    ours = OfflineModel(path, "float32", "sdpa_padded", device="cuda", pooling=PoolingMode.MEAN, normalize=False)
    assert max_abs(ours.embed(texts).vectors, _reference(path, texts, ours.tokenizer)) <= 1e-4


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("backend", VARLEN, ids=lambda b: b.value)
def test_low_precision_backends(make_hf_model, texts, dtype, backend):
    if backend is AttentionBackendName.FLASH_VARLEN:
        pytest.importorskip("flash_attn")
    path = make_hf_model("BertModel")
    ours = OfflineModel(path, dtype, backend.value, device="cuda", pooling=PoolingMode.MEAN, normalize=False)
    got = ours.embed(texts).vectors
    ref = _reference(path, texts, ours.tokenizer)
    assert float(torch.nn.functional.cosine_similarity(got, ref).min()) >= 0.999
    # Batch invariance holds up to low-precision rounding.
    alone = torch.stack([ours.embed([t]).vectors[0] for t in texts])
    assert float(torch.nn.functional.cosine_similarity(alone, got).min()) >= 0.9999


def test_real_minilm_on_cuda(minilm_dir, corpus):
    from sentence_transformers import SentenceTransformer

    texts = corpus[::17][:240]
    # .float(): the reference runs in fp32 whatever dtype the weights are stored in.
    ref = SentenceTransformer(str(minilm_dir), device="cpu").float().encode(texts, convert_to_tensor=True)
    for dtype in ("float32", "bfloat16", "float16"):
        got = OfflineModel(minilm_dir, dtype, device="cuda").embed(texts).vectors
        floor = 0.9999 if dtype == "float32" else 0.999
        assert float(torch.nn.functional.cosine_similarity(got, ref).min()) >= floor, dtype
