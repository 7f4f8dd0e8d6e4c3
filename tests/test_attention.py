"""Every CPU attention backend equals a direct per-sequence reference, incl. causal and sliding windows."""

from __future__ import annotations

import pytest
import torch

from engine import attention
from engine.attention import BACKENDS, AttentionBackendName, AttentionSpec, select_backend
from engine.batch import pack
from engine.errors import BackendUnavailable

CPU = [AttentionBackendName.SDPA_GROUPED, AttentionBackendName.SDPA_BUCKETED, AttentionBackendName.SDPA_PADDED]


def _reference(q, k, v, seqlens, spec, bias=None):
    outs, start = [], 0
    for n in seqlens:
        qs, ks, vs = (x[start:start + n].transpose(0, 1).double() for x in (q, k, v))  # [H, n, D]
        if ks.shape[0] != qs.shape[0]:
            ks = ks.repeat_interleave(qs.shape[0] // ks.shape[0], 0)
            vs = vs.repeat_interleave(qs.shape[0] // vs.shape[0], 0)
        scores = qs @ ks.transpose(-1, -2) * (spec.scale or qs.shape[-1] ** -0.5)
        if bias is not None:
            scores = scores + bias(n).double()
        i = torch.arange(n)
        rel = i[None, :] - i[:, None]
        keep = torch.ones(n, n, dtype=torch.bool)
        if spec.causal:
            keep &= rel <= 0
        if spec.window:
            keep &= (rel >= -spec.window[0]) & (rel <= spec.window[1])
        scores = scores.masked_fill(~keep, float("-inf"))
        outs.append((scores.softmax(-1) @ vs).transpose(0, 1))
        start += n
    return torch.cat(outs).float()


@pytest.mark.parametrize("name", CPU, ids=lambda n: n.value)
@pytest.mark.parametrize("spec", [AttentionSpec(), AttentionSpec(causal=True), AttentionSpec(window=(4, 4)),
                                  AttentionSpec(causal=True, window=(3, 0)), AttentionSpec(scale=0.3)],
                         ids=["full", "causal", "window", "causal-window", "scale"])
@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
def test_backend_matches_reference(name, spec, kv_heads):
    g = torch.Generator().manual_seed(0)
    seqlens = [1, 5, 5, 5, 9, 17, 17, 40, 3]
    batch = pack([[0] * n for n in seqlens])
    t = sum(seqlens)
    q = torch.randn(t, 4, 8, generator=g)
    k = torch.randn(t, kv_heads, 8, generator=g)
    v = torch.randn(t, kv_heads, 8, generator=g)
    backend = BACKENDS[name]()
    out = backend.attend(q, k, v, backend.prepare(batch), spec)
    assert out.shape == q.shape
    assert float((out - _reference(q, k, v, seqlens, spec)).abs().max()) < 1e-5


def _relative_bias(heads: int):
    """A bias that depends on key - query only, different per head (as MPNet's)."""
    table = torch.randn(heads, 81, generator=torch.Generator().manual_seed(2))

    def bias(length: int) -> torch.Tensor:
        i = torch.arange(length)
        rel = (i[None, :] - i[:, None]).clamp(-40, 40) + 40  # [L, L]
        return table[:, rel]  # [H, L, L]

    return bias


@pytest.mark.parametrize("name", CPU, ids=lambda n: n.value)
@pytest.mark.parametrize("spec", [AttentionSpec(), AttentionSpec(window=(4, 4))], ids=["full", "window"])
@pytest.mark.parametrize("max_scores", [None, 100_000, 0], ids=["matmul", "matmul-chunked", "fused-long"])
def test_additive_bias_matches_reference(name, spec, max_scores, monkeypatch):
    """Lengths above CPU_MATMUL_ATTENTION_MAX_LEN: attended whole, in chunks of sequences whose scores
    fit CPU_MATMUL_ATTENTION_MAX_SCORES (4 heads x 150² = 90k per sequence), or, with no room at all, by
    the fused SDPA kernel, with a float mask too."""
    if max_scores is not None:
        monkeypatch.setattr(attention, "CPU_MATMUL_ATTENTION_MAX_SCORES", max_scores)
    g = torch.Generator().manual_seed(0)
    seqlens = [1, 5, 5, 9, 17, 40, 150, 150, 150, 3]
    batch = pack([[0] * n for n in seqlens])
    t = sum(seqlens)
    q, k, v = (torch.randn(t, 4, 8, generator=g) for _ in range(3))
    bias = _relative_bias(4)
    backend = BACKENDS[name]()
    out = backend.attend(q, k, v, backend.prepare(batch), spec, bias)
    assert float((out - _reference(q, k, v, seqlens, spec, bias)).abs().max()) < 1e-5
    assert float((out - _reference(q, k, v, seqlens, spec)).abs().max()) > 1e-2  # the bias did something


def test_models_needing_a_bias_get_a_backend_that_can_add_it():
    backend, reason = select_backend(torch.device("cuda"), torch.bfloat16, needs_bias=True)
    assert backend.name is AttentionBackendName.SDPA_PADDED
    assert "flash_varlen: it cannot add the relative-position attention bias" in reason
    with pytest.raises(BackendUnavailable, match="attention bias"):
        select_backend(torch.device("cpu"), torch.float32, "torch_varlen", needs_bias=True)


def test_grouped_backend_groups_equal_lengths():
    backend = BACKENDS[AttentionBackendName.SDPA_GROUPED]()
    groups = backend.prepare(pack([[0] * n for n in [3, 3, 3, 5, 5, 3]]))
    assert [(g.count, g.length) for g in groups] == [(3, 3), (2, 5), (1, 3)]


def test_bucketed_backend_bounds_padding():
    backend = BACKENDS[AttentionBackendName.SDPA_BUCKETED](max_padding=0.15)
    lens = [10, 10, 11, 11, 12, 30, 31, 100]
    for p in backend.prepare(pack([[0] * n for n in lens])):
        real = int(p.valid.sum())
        assert p.valid.numel() <= 1.15 * real


def test_selection_reports_a_reason():
    backend, reason = select_backend(torch.device("cpu"), torch.float32)
    assert backend.name is AttentionBackendName.SDPA_BUCKETED
    assert "cpu" in reason


@pytest.mark.parametrize("name", CPU, ids=lambda n: n.value)
@pytest.mark.parametrize("case", ["overflow", "underflow", "overflow-in-pv"])
def test_extreme_scores_keep_softmax_exact(name, case):
    """The short-sequence CPU path exponentiates scores without the max shift; scores whose exp overflows
    (> ~88), rows that all underflow (< ~-69), and finite row sums whose product with v overflows must
    still give the shifted softmax's answer."""
    g = torch.Generator().manual_seed(0)
    seqlens = [4, 4, 9, 30]
    batch = pack([[0] * n for n in seqlens])
    t = sum(seqlens)
    q, k, v = (torch.randn(t, 2, 8, generator=g) for _ in range(3))
    bias = None
    if case == "overflow":
        q, k = q * 12, k * 12  # scaled scores in the hundreds
    elif case == "underflow":
        def bias(length: int) -> torch.Tensor:  # every score far below exp's range
            return torch.full((2, length, length), -300.0)
    else:
        def bias(length: int) -> torch.Tensor:  # one score per row near exp's limit: e^85 ~ 8e36, finite
            out = torch.zeros(2, length, length)
            out[:, :, 0] = 85.0
            return out
        v = v * 1000  # ... but e^85 * |v| is not
        q, k = q * 0.01, k * 0.01
    backend = BACKENDS[name]()
    out = backend.attend(q, k, v, backend.prepare(batch), AttentionSpec(), bias)
    want = _reference(q, k, v, seqlens, AttentionSpec(), bias)
    assert torch.isfinite(out).all()
    assert float((out - want).abs().max()) < 1e-4 * float(v.abs().max())


def test_bucket_count_does_not_scale_with_distinct_lengths():
    """The CPU default buckets lengths by rung, so 200 distinct lengths (one sequence each: 200 groups for
    sdpa_grouped) become a handful of masked batched calls, and the masked keys change nothing."""
    seqlens = list(range(1, 201))
    batch = pack([[0] * n for n in seqlens])
    backend = BACKENDS[AttentionBackendName.SDPA_BUCKETED]()
    meta = backend.prepare(batch)
    assert len(BACKENDS[AttentionBackendName.SDPA_GROUPED]().prepare(batch)) == 200
    assert len(meta) <= 16, [p.gather.shape for p in meta]
    assert any(not p.exact for p in meta)  # padded buckets with key masks are exercised
    g = torch.Generator().manual_seed(0)
    t = sum(seqlens)
    q, k, v = (torch.randn(t, 4, 8, generator=g) for _ in range(3))
    out = backend.attend(q, k, v, meta, AttentionSpec())
    assert float((out - _reference(q, k, v, seqlens, AttentionSpec())).abs().max()) < 1e-5


def test_bucket_width_depends_on_the_length_alone():
    widths = [attention.bucket_width(n) for n in range(1, 2049)]
    assert all(w >= n for n, w in zip(range(1, 2049), widths))
    assert all(w - n <= max(15, n // 8) for n, w in zip(range(1, 2049), widths))
    assert len(set(widths[:256])) == 16  # 16, 32, ..., 256: few buckets per batch
    assert len(set(widths[256:512])) == 8  # then steps of 32


def test_default_cpu_attention_is_batch_invariant(minilm_dir, corpus):
    """Every text's embedding is bit-identical alone and in any batch the scheduler could form (sorted by
    length, with shorter and longer companions). With buckets sized from the batch's lengths the vectors
    differed in their last float32 places."""
    from engine.loading import LoadOptions, load_model

    model = load_model(minilm_dir, LoadOptions(dtype="float32"))
    assert model.info.attention_backend == AttentionBackendName.SDPA_BUCKETED.value
    texts = corpus[::41][:48]
    enc = model.tokenizer.encode(texts, offsets=False)

    def embed(indices: list[int]) -> dict[int, torch.Tensor]:
        order = sorted(indices, key=lambda i: len(enc[i]))  # as the scheduler sorts a batch
        batch = model.make_batch([enc[i] for i in order])
        with torch.inference_mode():
            return dict(zip(order, model.split_output(model.forward(batch), batch), strict=True))

    alone = {i: embed([i])[i] for i in range(len(texts))}
    g = torch.Generator().manual_seed(0)
    differing = set()
    for size in (2, 5, 16, 48):
        for _ in range(3):
            picked = torch.randperm(len(texts), generator=g)[:size].tolist()
            for i, out in embed(picked).items():
                if not torch.equal(out, alone[i]):
                    differing.add(i)
    assert not differing, f"{len(differing)} of {len(texts)} texts changed with their batch"
