"""Every family's forward pass on CUDA against transformers on the CPU (run by scripts/gpu_check.sh).

The CPU suites check each family × head; here the question is whether the CUDA attention paths (torch
varlen with causal masks, GQA and sliding windows; padded SDPA with relative-position bias; DeBERTa's own
attention) give the same hidden states. Skipped where there is no CUDA device.

Thresholds: fp32 (TF32 off) ≤ 1e-4 max abs against the reference; bf16/fp16 on the backend the engine
picks: cosine ≥ 0.999 per token against the fp32 reference.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from engine.loading import LoadOptions, load_model
from tests.families import FAMILIES
from tests.reference import engine_hidden, max_abs, reference_hidden

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

@pytest.fixture(autouse=True)
def _no_tf32():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_on_cuda(make_hf_model, texts, family):
    case = FAMILIES[family]
    make, hf_class, pad_kw = case.make, case.hf_class, case.pad
    if not hasattr(transformers, hf_class):  # an older transformers on the GPU machine
        pytest.skip(f"transformers {transformers.__version__} has no {hf_class}")
    path = make(make_hf_model)
    hf = getattr(transformers, hf_class).from_pretrained(path, attn_implementation="eager").eval()

    # fp32: padded SDPA (the varlen kernels need fp16/bf16); DeBERTa computes its own attention.
    backend = None if family == "deberta-v3" else "sdpa_padded"
    fp32 = load_model(path, LoadOptions(device="cuda", dtype="float32", attention_backend=backend))
    encoded = fp32.tokenizer.encode(texts)
    ref = reference_hidden(hf, encoded, **pad_kw)
    assert max(len(e) for e in encoded) >= 300
    for got, want in zip(engine_hidden(fp32, encoded), ref, strict=True):
        assert max_abs(got.cpu(), want) <= 1e-4, family

    for dtype in ("bfloat16", "float16"):
        low = load_model(path, LoadOptions(device="cuda", dtype=dtype))
        print(f"{family} {dtype}: attention {low.info.attention_reason}")
        worst = min(float(torch.nn.functional.cosine_similarity(got.float().cpu(), want).min())
                    for got, want in zip(engine_hidden(low, encoded), ref, strict=True))
        assert worst >= 0.999, (family, dtype, worst)
