"""Attention backends behind one contract.

Every backend takes q, k, v as [T, heads, head_dim] over a packed batch and returns [T, heads, head_dim].
A backend is chosen once per model at load time (`select_backend`), with a readable reason. Per-batch
bookkeeping (grouping, padding indices) happens once per forward in `prepare`, not once per layer.

CPU backends (measured on a 2-core AMD EPYC Zen 4 with AVX512-BF16, see docs/benchmarks.md):
- `sdpa_bucketed` (default): each sequence is padded to a rung that depends on its own length only
  (`bucket_width`), and each run of sequences sharing a rung is attended as one batched call with a key
  mask: a batch's attention work does not scale with its number of distinct lengths (a 64-text call of
  the project corpus: about 8 buckets instead of 42 groups), and a text's answer does not depend on the
  batch it lands in.
- `sdpa_grouped`: sequences of identical length are attended together as one [b, heads, L, D] SDPA
  call, no padding and no mask (DeBERTa's own attention uses its groups).
CUDA backends:
- `flash_varlen`: flash-attn's `flash_attn_varlen_func` (fp16/bf16).
- `torch_varlen`: `torch.nn.attention.varlen.varlen_attn` (torch >= 2.10, fp16/bf16).
- `sdpa_padded`: the always-available fallback: one padded batch with a key mask.

Additive bias (relative-position models such as MPNet): a model may pass an `AttentionBias`, a
function of the (padded) sequence length returning an [H, L, L] bias that depends on relative positions
only. The SDPA backends add it to the scores; the varlen kernels cannot, so models that need one
are given an SDPA backend at load (`select_backend(..., needs_bias=True)`). Without a bias the code
paths are unchanged.

Attention computed by the model (DeBERTa's disentangled attention, whose position terms depend on the
queries and keys): the model asks for `own_attention` and gets `sdpa_grouped`, on every device, for its
runs of equal-length sequences (`prepare`); it never calls `attend`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F

from engine.batch import PackedBatch
from engine.errors import BackendUnavailable


class AttentionBackendName(str, Enum):
    """Names an operator can pass as `--attention-backend`."""

    FLASH_VARLEN = "flash_varlen"
    """flash-attn's variable-length kernel (CUDA, fp16/bf16)."""
    TORCH_VARLEN = "torch_varlen"
    """torch.nn.attention.varlen.varlen_attn (CUDA, fp16/bf16, torch >= 2.10)."""
    SDPA_GROUPED = "sdpa_grouped"
    """SDPA per run of equal-length sequences: exact, no padding."""
    SDPA_BUCKETED = "sdpa_bucketed"
    """Length rungs, one masked batched call per run of a rung (CPU default; batch-invariant)."""
    SDPA_PADDED = "sdpa_padded"
    """SDPA on one padded batch with a key mask: the fallback that always runs."""


@dataclass(frozen=True)
class AttentionSpec:
    """What a model asks of attention. `window` is (left, right) tokens; None means full attention."""

    causal: bool = False
    window: tuple[int, int] | None = None
    scale: float | None = None


# length L -> additive bias [H, L, L] (query, key), the same for every sequence padded or cut to L.
AttentionBias = Callable[[int], torch.Tensor]


# ---------------------------------------------------------------------------------------------------
# Masks shared by the SDPA-based backends


def _band_mask(length: int, spec: AttentionSpec, device: torch.device) -> torch.Tensor | None:
    """[L, L] boolean mask (True = attend) for causal and/or sliding-window attention, or None."""
    if not spec.causal and spec.window is None:
        return None
    pos = torch.arange(length, device=device)
    rel = pos[None, :] - pos[:, None]  # key - query
    keep = torch.ones(length, length, dtype=torch.bool, device=device)
    if spec.causal:
        keep &= rel <= 0
    if spec.window is not None:
        left, right = spec.window
        if left >= 0:
            keep &= rel >= -left
        if right >= 0:
            keep &= rel <= right
    return keep


# On CPU, two batched GEMMs (`_matmul_attention`) beat the fused SDPA kernel for small head dims: always
# up to this length (measured 1.5-3x faster at L <= 128), and beyond it while the [b, H, L, L] scores stay
# small (measured at head dim 32: 1.3-2x faster for one sequence of 140-512 tokens and for 4 of 256;
# slower for 8 of 512, 25M scores, where the fused kernel's tiling wins). Longer groups are therefore
# attended in chunks of sequences whose scores fit MAX_SCORES; only a single sequence over it takes
# the fused kernel.
CPU_MATMUL_ATTENTION_MAX_LEN = 128
CPU_MATMUL_ATTENTION_MAX_SCORES = 4 * 1024 * 1024

# Row sums of exp(scores) outside [this, inf) send a group back to the max-shifted softmax (see below).
_MIN_EXP_ROW_SUM = 1e-30


def _matmul_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                      scale: float) -> torch.Tensor:
    """Attention as two batched GEMMs for short sequences on CPU. q, k, v: [b, H, L, D] strided views ->
    [b, H, L, D].

    torch's softmax pays ~100 ns per row of the [b, H, L, L] scores whatever the row's length, which
    for L ~ 20 costs more than both GEMMs together (measured). So the scores are exponentiated in place
    without the max shift (one vectorised pass), the PV product runs on the unnormalised weights and
    its rows are divided by the row sums: the same softmax, minus ~80 % of its time. Without the
    shift, exp overflows above ~88 (fp32 and bf16 share that range) and a row whose every score is
    below ~-69 loses precision; the row sums show both, and with max|v| they also bound the unnormalised
    PV product. A group failing either check (rare: trained encoders keep scaled scores within tens) is
    recomputed with the shifted softmax. q, k and v are first laid out contiguously (the scale applied
    in the same pass): a batched GEMM over strided views is 2x slower.
    """
    q = torch.mul(q, scale, out=torch.empty(q.shape, dtype=q.dtype, device=q.device))
    k, v = k.contiguous(), v.contiguous()

    def scores() -> torch.Tensor:
        s = torch.matmul(q, k.transpose(-1, -2))  # [b, H, L, L]
        if mask is not None and mask.dtype == torch.bool:
            return s.masked_fill_(~mask, float("-inf"))
        return s if mask is None else s.add_(mask)

    weights = scores().exp_()
    sums = weights.sum(-1, keepdim=True)  # [b, H, L, 1], accumulated in fp32, rounded once to the dtype
    low, high = (float(x) for x in torch.aminmax(sums))
    v_low, v_high = (float(x) for x in torch.aminmax(v))
    # |(weights @ v)[i, j]| <= sums[i] * max|v|: the unnormalised product cannot overflow either.
    # (NaN anywhere fails the comparisons and takes the fallback too.)
    if low >= _MIN_EXP_ROW_SUM and high * max(-v_low, v_high) < torch.finfo(v.dtype).max:
        return torch.matmul(weights, v).div_(sums)
    return torch.matmul(torch.softmax(scores(), dim=-1), v)  # softmax accumulates in fp32 internally


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
          spec: AttentionSpec, bias: torch.Tensor | None = None) -> torch.Tensor:
    """q, k, v: [b, L, H, D] -> [b, L, H, D]. `mask`: bool, True = attend, broadcastable to [b, H, L, L].
    `bias`: additive [H, L, L]; with a mask it becomes one float mask (-inf where masked)."""
    if k.shape[2] != q.shape[2]:  # GQA: repeat kv heads
        rep = q.shape[2] // k.shape[2]
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [b, H, L, D]
    if bias is not None:
        bias = bias.to(q.dtype)
        mask = bias if mask is None else torch.where(mask, bias, float("-inf"))  # [b or 1, H, L, L]
    b, h, length = q.shape[:3]
    per_sequence = h * length * length  # scores
    if q.device.type == "cpu" and (length <= CPU_MATMUL_ATTENTION_MAX_LEN
                                   or per_sequence <= CPU_MATMUL_ATTENTION_MAX_SCORES):
        scale = spec.scale if spec.scale is not None else q.shape[-1] ** -0.5
        step = b if length <= CPU_MATMUL_ATTENTION_MAX_LEN else max(1, CPU_MATMUL_ATTENTION_MAX_SCORES // per_sequence)
        if step >= b:
            out = _matmul_attention(q, k, v, mask, scale)
        else:
            per_row_mask = mask is not None and mask.dim() == 4 and mask.shape[0] == b
            out = torch.cat([_matmul_attention(q[i:i + step], k[i:i + step], v[i:i + step],
                                               mask[i:i + step] if per_row_mask and mask is not None else mask,
                                               scale)
                             for i in range(0, b, step)])
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=spec.scale)  # [b, H, L, D]
    return out.transpose(1, 2)


# ---------------------------------------------------------------------------------------------------
# Backends


class AttentionBackend:
    """Interface: `prepare` once per batch, `attend` once per layer."""

    name: AttentionBackendName
    supports_bias: bool = True  # can add an AttentionBias to the scores

    @classmethod
    def unavailable_reason(cls, device: torch.device, dtype: torch.dtype) -> str | None:
        """None when usable on this device/dtype, else a sentence saying why not."""
        return None

    def prepare(self, batch: PackedBatch) -> Any:
        return batch

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, meta: Any,
               spec: AttentionSpec, bias: AttentionBias | None = None) -> torch.Tensor:
        raise NotImplementedError


def _runs(seqlens: Sequence[int], key: Callable[[int], int]) -> list[tuple[int, int, list[int]]]:
    """Runs of consecutive sequences with the same `key(length)`: (key, token offset, lengths) each."""
    runs: list[tuple[int, int, list[int]]] = []
    offset = 0
    for n in seqlens:
        k = key(n)
        if runs and runs[-1][0] == k:
            runs[-1][2].append(n)
        else:
            runs.append((k, offset, [n]))
        offset += n
    return runs


@dataclass(frozen=True)
class _Group:
    start: int  # token offset of the first sequence
    count: int  # number of sequences
    length: int  # length of each (grouped) or padded length (bucketed)


class SdpaGrouped(AttentionBackend):
    """Runs of consecutive equal-length sequences as one SDPA call each: zero padding."""

    name = AttentionBackendName.SDPA_GROUPED

    def prepare(self, batch: PackedBatch) -> list[_Group]:
        return [_Group(start, len(lens), n) for n, start, lens in _runs(batch.seqlens, lambda n: n)]

    def attend(self, q, k, v, meta: list[_Group], spec: AttentionSpec,
               bias: AttentionBias | None = None) -> torch.Tensor:
        if len(meta) == 1:
            g = meta[0]
            return self._one(q, k, v, g, spec, bias).reshape(q.shape)
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)  # [T, H, D]
        for g in meta:
            end = g.start + g.count * g.length
            # One copy, straight from the attention output's [b, H, L, D] layout into the packed rows.
            out[g.start:end].view(g.count, g.length, *q.shape[1:]).copy_(
                self._one(q[g.start:end], k[g.start:end], v[g.start:end], g, spec, bias))
        return out

    @staticmethod
    def _one(q, k, v, g: _Group, spec: AttentionSpec, bias: AttentionBias | None) -> torch.Tensor:
        shape = (g.count, g.length)
        mask = _band_mask(g.length, spec, q.device)
        return _sdpa(q.reshape(*shape, *q.shape[1:]), k.reshape(*shape, *k.shape[1:]),
                     v.reshape(*shape, *v.shape[1:]), mask, spec,
                     None if bias is None else bias(g.length))  # [b, L, H, D]


@dataclass(frozen=True)
class _Padded:
    gather: torch.Tensor  # [b, L] token index into the packed axis (padding: the sequence's first token)
    valid: torch.Tensor  # [b, L] bool
    mask: torch.Tensor  # [b, 1, 1, L] bool key mask
    start: int
    end: int
    exact: bool = False  # every sequence has length L: no padding, no mask
    rows: torch.Tensor | None = None  # CPU: [real tokens] index of each real token in the bucket's [b * L] rows
    drop: torch.Tensor | None = None  # CPU: [b, 1, 1, L] bool, True = padded key (masked_fill_'s sense)


# Bucket widths on CPU (`SdpaBucketed.prepare`): a sequence of n tokens is attended at the rung at or above
# n, a multiple of max(16, 2^(floor(log2 n) - 3)): at most 15 tokens of padding below 256, at most 1/8 of n
# above. The width is a function of n alone, so a text is attended over the same padded length whatever
# it is batched with, and its answer under concurrency is bit-identical to its answer alone. A width
# chosen from the batch's lengths (the cost model before it) changed the order of the row sums and of the
# matmuls' reductions: embeddings differed from the call alone in the last float32 place (issue 17).
# Measured against the cost model, alternating on the same batches (docs/reliability.md): forward time
# +1 % for 64-text calls, +5 % for 1- and 4-text calls (those are padded to their rung, where they were
# attended exactly).
CPU_BUCKET_MIN_STEP = 16


def bucket_width(n: int) -> int:
    """The padded length a sequence of `n` tokens is attended at on CPU."""
    step = max(CPU_BUCKET_MIN_STEP, 1 << max(0, n.bit_length() - 4))
    return -(-n // step) * step


class SdpaBucketed(AttentionBackend):
    """Consecutive sequences padded into buckets, each attended as one batched call with a key mask
    (exact: masked keys get zero weight). On CPU a bucket is the run of sequences whose lengths share a
    rung (`bucket_width`: at most 1/8 padding), so a batch's attention work does not scale with its number
    of distinct lengths and a sequence's answer does not depend on its batch. An explicit `max_padding`
    bounds the padded fraction of tokens per bucket instead (and is the rule off CPU, at 0.15)."""

    name = AttentionBackendName.SDPA_BUCKETED

    def __init__(self, max_padding: float | None = None) -> None:
        self.max_padding = max_padding

    def prepare(self, batch: PackedBatch) -> list[_Padded]:
        device = batch.input_ids.device
        if self.max_padding is None and device.type == "cpu":  # runs of one rung (`bucket_width`)
            return [_make_padded(start, lens, device, width)
                    for width, start, lens in _runs(batch.seqlens, bucket_width)]
        max_padding = 0.15 if self.max_padding is None else self.max_padding
        buckets: list[tuple[int, list[int]]] = []  # (token offset, lengths)
        offset = 0
        width = real = 0  # of the current bucket: padded length, real tokens
        for n in batch.seqlens:
            if buckets:
                lens = buckets[-1][1]
                new_width = max(width, n)
                if new_width * (len(lens) + 1) <= (1 + max_padding) * (real + n):
                    lens.append(n)
                    width, real = new_width, real + n
                    offset += n
                    continue
            buckets.append((offset, [n]))
            width, real = n, n
            offset += n
        return [_make_padded(start, lens, device) for start, lens in buckets]

    def attend(self, q, k, v, meta: list[_Padded], spec: AttentionSpec,
               bias: AttentionBias | None = None) -> torch.Tensor:
        if q.device.type == "cpu":
            return _attend_buckets_cpu(q, k, v, meta, spec, bias)
        out = torch.empty_like(q)
        for p in meta:
            out[p.start:p.end] = _attend_padded(q, k, v, p, spec, bias)
        return out


class SdpaPadded(SdpaBucketed):
    """The whole batch as one padded SDPA call. Runs everywhere; wastes compute on padding."""

    name = AttentionBackendName.SDPA_PADDED

    def prepare(self, batch: PackedBatch) -> list[_Padded]:
        return [_make_padded(0, list(batch.seqlens), batch.input_ids.device)]

    def attend(self, q, k, v, meta: list[_Padded], spec: AttentionSpec,
               bias: AttentionBias | None = None) -> torch.Tensor:
        out = torch.empty_like(q)
        for p in meta:
            out[p.start:p.end] = _attend_padded(q, k, v, p, spec, bias)
        return out


def _make_padded(start: int, lens: list[int], device: torch.device, width: int | None = None) -> _Padded:
    width = max(lens) if width is None else width
    lens_t = torch.tensor(lens, device=device)
    ar = torch.arange(width, device=device)
    valid = ar[None, :] < lens_t[:, None]  # [b, L]
    starts = torch.cumsum(lens_t, 0) - lens_t + start
    gather = starts[:, None] + torch.where(valid, ar[None, :], torch.zeros_like(ar)[None, :])
    exact = min(lens) == width
    mask = valid[:, None, None, :]
    rows = drop = None
    if device.type == "cpu" and not exact:  # nonzero would sync a GPU; the CPU path reads these per layer
        rows, drop = valid.flatten().nonzero().flatten(), ~mask
    return _Padded(gather, valid, mask, start, start + sum(lens), exact, rows, drop)  # type: ignore[arg-type]


def _attend_padded(q, k, v, p: _Padded, spec: AttentionSpec, bias: AttentionBias | None) -> torch.Tensor:
    """Right padding keeps every real token's relative positions, so bias(padded length) applies as is."""
    mask = p.mask
    band = _band_mask(p.gather.shape[1], spec, q.device)
    if band is not None:
        mask = mask & band
        # A padded query row may have every key masked; keep it finite (its output is discarded).
        mask = mask | ~p.valid[:, None, :, None]
    o = _sdpa(q[p.gather], k[p.gather], v[p.gather], mask, spec,
              None if bias is None else bias(p.gather.shape[1]))  # [b, L, H, D]
    return o[p.valid]  # [real tokens, H, D] in packed order


def _attend_buckets_cpu(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, meta: list[_Padded],
                        spec: AttentionSpec, bias: AttentionBias | None) -> torch.Tensor:
    """Every bucket as one batched call of `_exp_attention`, then one guard check for the whole layer.

    q: [T, H, D]; k, v: [T, Hkv, D]. A padded bucket's rows are gathered with one `index_select` (of the
    fused QKV projection's rows when q, k and v are its views), then laid out as [b, H, L, D] like
    `_matmul_attention` does (q scaled in the same pass); a bucket without padding is a view. The
    unshifted exp's checks (row sums, and with max|v| the bound on the unnormalised PV product, as in
    `_matmul_attention`) are collected as tensors and read once per layer, not once per group; a part
    failing them is recomputed with the shifted softmax. Buckets over CPU_MATMUL_ATTENTION_MAX_LEN are
    chunked so that a chunk's scores fit CPU_MATMUL_ATTENTION_MAX_SCORES; a single sequence over it takes
    the fused SDPA kernel. Each bucket's output is written once into the packed [T, H, D] result.
    """
    heads, dim = q.shape[1:]
    kv_heads = k.shape[1]
    scale = spec.scale if spec.scale is not None else dim ** -0.5
    fused = _fused_rows(q, k, v)  # [T, (H + 2 Hkv) D] or None
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)  # [T, H, D]
    outs: list[torch.Tensor] = []  # per bucket [b, H, L, D]
    sums: list[torch.Tensor] = []  # per part (min, max) of its row sums
    parts: list[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    for n, p in enumerate(meta):
        b, length = p.gather.shape
        if p.exact:
            qs, ks, vs = (x[p.start:p.end].view(b, length, *x.shape[1:]) for x in (q, k, v))  # [b, L, h, D]
        elif fused is not None:
            rows = fused.index_select(0, p.gather.flatten()).view(b, length, heads + 2 * kv_heads, dim)
            qs, ks, vs = rows.split([heads, kv_heads, kv_heads], dim=2)
        else:
            flat = p.gather.flatten()
            qs, ks, vs = (x.flatten(1).index_select(0, flat).view(b, length, *x.shape[1:]) for x in (q, k, v))
        qb = torch.mul(qs.transpose(1, 2), scale, out=torch.empty((b, heads, length, dim), dtype=q.dtype))
        kb, vb = ks.transpose(1, 2).contiguous(), vs.transpose(1, 2).contiguous()  # [b, Hkv, L, D]
        if kv_heads != heads:  # GQA: repeat kv heads
            kb, vb = kb.repeat_interleave(heads // kv_heads, 1), vb.repeat_interleave(heads // kv_heads, 1)
        drop = _bucket_drop(p, length, spec, q.device)  # None or broadcastable to [b, H, L, L]
        bias_l = None if bias is None else bias(length).to(q.dtype)  # [H, L, L]
        per_sequence = heads * length * length
        if length > CPU_MATMUL_ATTENTION_MAX_LEN and per_sequence > CPU_MATMUL_ATTENTION_MAX_SCORES:
            mask = None if drop is None else ~drop
            if bias_l is not None:
                mask = bias_l if mask is None else torch.where(mask, bias_l, float("-inf"))
            outs.append(F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, scale=1.0))  # q is scaled
            continue
        step = b if length <= CPU_MATMUL_ATTENTION_MAX_LEN else max(1, CPU_MATMUL_ATTENTION_MAX_SCORES // per_sequence)
        chunks = []
        for i in range(0, b, step):
            m = drop[i:i + step] if drop is not None and drop.shape[0] == b else drop
            o, row_sums = _exp_attention(qb[i:i + step], kb[i:i + step], vb[i:i + step], m, bias_l)
            chunks.append(o)
            sums.append(torch.stack(torch.aminmax(row_sums)))
            parts.append((n, i, qb[i:i + step], kb[i:i + step], vb[i:i + step], m))
        outs.append(chunks[0] if len(chunks) == 1 else torch.cat(chunks))
    if parts:
        v_low, v_high = torch.aminmax(v)
        flags = torch.cat([torch.stack(sums).flatten(), torch.stack([v_low, v_high])]).float().tolist()  # one sync
        max_v = max(-flags[-2], flags[-1])
        limit = torch.finfo(v.dtype).max
        for j, (n, i, qb, kb, vb, m) in enumerate(parts):
            low, high = flags[2 * j], flags[2 * j + 1]
            if not (low >= _MIN_EXP_ROW_SUM and high * max_v < limit):  # rare; NaN fails here too
                s = torch.matmul(qb, kb.transpose(-1, -2))
                if bias is not None:
                    s.add_(bias(qb.shape[2]).to(q.dtype))
                if m is not None:
                    s.masked_fill_(m, float("-inf"))
                outs[n][i:i + qb.shape[0]] = torch.matmul(torch.softmax(s, dim=-1), vb)
    for p, o in zip(meta, outs, strict=True):  # o: [b, H, L, D] -> the bucket's packed rows
        b, length = p.gather.shape
        if p.exact:
            out[p.start:p.end].view(b, length, heads, dim).copy_(o.transpose(1, 2))
        else:
            padded = o.transpose(1, 2).reshape(b * length, heads * dim)  # [b * L, C]
            torch.index_select(padded, 0, p.rows, out=out[p.start:p.end].view(-1, heads * dim))  # type: ignore[arg-type]
    return out


def _fused_rows(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor | None:
    """The [T, (H + 2 Hkv) D] rows q, k and v were split from (a fused QKV projection), or None."""
    width = q.shape[1] * q.shape[2] + 2 * k.shape[1] * k.shape[2]
    size = q.element_size()
    if (q.stride() == k.stride() == v.stride() == (width, q.shape[2], 1) and k.shape == v.shape
            and k.data_ptr() == q.data_ptr() + q.shape[1] * q.shape[2] * size
            and v.data_ptr() == k.data_ptr() + k.shape[1] * k.shape[2] * size):
        return torch.as_strided(q, (q.shape[0], width), (width, 1))
    return None


def _bucket_drop(p: _Padded, length: int, spec: AttentionSpec, device: torch.device) -> torch.Tensor | None:
    """Bool mask (True = masked out) broadcastable to [b, H, L, L]: the padded keys and any band."""
    band = _band_mask(length, spec, device)
    if band is None:
        return p.drop  # [b, 1, 1, L], or None when the bucket has no padding
    if p.exact:
        return ~band
    # A padded query row may have every key masked; keep it finite (its output is discarded).
    return ~((p.mask & band) | ~p.valid[:, None, :, None])


def _exp_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: torch.Tensor | None,
                   bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`_matmul_attention`'s unshifted path on contiguous [b, H, L, D] (q scaled): the output and the
    row sums [b, H, L, 1] for the caller's batched check. Masked keys get exp(-inf) = 0: exact."""
    s = torch.matmul(q, k.transpose(-1, -2))  # [b, H, L, L]
    if bias is not None:
        s.add_(bias)
    if drop is not None:
        s.masked_fill_(drop, float("-inf"))
    weights = s.exp_()
    row_sums = weights.sum(-1, keepdim=True)  # accumulated in fp32, rounded once to the dtype
    return torch.matmul(weights, v).div_(row_sums), row_sums


def _varlen_attn_parameters() -> frozenset[str]:
    """Keyword parameters of this torch's `varlen_attn`: 2.10 has `is_causal`; later releases replace it
    with `window_size` and add `enable_gqa`. Read once, so one backend serves every release."""
    import inspect

    from torch.nn.attention.varlen import varlen_attn

    return frozenset(inspect.signature(varlen_attn).parameters)


class TorchVarlen(AttentionBackend):
    name = AttentionBackendName.TORCH_VARLEN
    supports_bias = False

    def __init__(self) -> None:
        self._params = _varlen_attn_parameters()

    @classmethod
    def unavailable_reason(cls, device, dtype):
        if device.type != "cuda":
            return "torch varlen_attn runs on CUDA only"
        if dtype not in (torch.float16, torch.bfloat16):
            return f"torch varlen_attn needs fp16/bf16, the model runs in {dtype}"
        if importlib.util.find_spec("torch.nn.attention.varlen") is None:
            return "torch.nn.attention.varlen is missing (needs torch >= 2.10)"
        return None

    def attend(self, q, k, v, meta: PackedBatch, spec: AttentionSpec, bias=None) -> torch.Tensor:
        from torch.nn.attention.varlen import varlen_attn

        kwargs: dict[str, Any] = {"scale": spec.scale}
        if "window_size" in self._params:
            left, right = spec.window if spec.window is not None else (-1, -1)
            kwargs["window_size"] = (left, 0 if spec.causal else right)
        elif spec.window is not None:
            # torch 2.10's varlen_attn has no sliding window: these layers take the padded path.
            return _attend_padded(q, k, v, _make_padded(0, list(meta.seqlens), q.device), spec, None)
        else:
            kwargs["is_causal"] = spec.causal
        if k.shape[1] != q.shape[1]:  # GQA
            if "enable_gqa" in self._params:
                kwargs["enable_gqa"] = True
            else:
                k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
                v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
        out = varlen_attn(q, k, v, meta.cu_seqlens, meta.cu_seqlens, meta.max_seqlen, meta.max_seqlen, **kwargs)
        return out[0] if isinstance(out, tuple) else out  # (out, lse) only when asked for the lse


class FlashVarlen(AttentionBackend):
    name = AttentionBackendName.FLASH_VARLEN
    supports_bias = False

    @classmethod
    def unavailable_reason(cls, device, dtype):
        if device.type != "cuda":
            return "flash-attn runs on CUDA only"
        if dtype not in (torch.float16, torch.bfloat16):
            return f"flash-attn needs fp16/bf16, the model runs in {dtype}"
        if importlib.util.find_spec("flash_attn") is None:
            return "flash-attn is not installed (pip install 'sie-agent-tools[gpu]')"
        return None

    def attend(self, q, k, v, meta: PackedBatch, spec: AttentionSpec, bias=None) -> torch.Tensor:
        from flash_attn import flash_attn_varlen_func  # pyright: ignore[reportMissingImports] (optional: GPU)

        window = spec.window if spec.window is not None else (-1, -1)
        return flash_attn_varlen_func(q, k, v, meta.cu_seqlens, meta.cu_seqlens, meta.max_seqlen,
                                      meta.max_seqlen, softmax_scale=spec.scale, causal=spec.causal,
                                      window_size=window)


BACKENDS: dict[AttentionBackendName, type[AttentionBackend]] = {
    AttentionBackendName.FLASH_VARLEN: FlashVarlen,
    AttentionBackendName.TORCH_VARLEN: TorchVarlen,
    AttentionBackendName.SDPA_GROUPED: SdpaGrouped,
    AttentionBackendName.SDPA_BUCKETED: SdpaBucketed,
    AttentionBackendName.SDPA_PADDED: SdpaPadded,
}

# Preference order per device type; the first available one wins.
_PREFERENCE = {
    "cuda": [AttentionBackendName.FLASH_VARLEN, AttentionBackendName.TORCH_VARLEN,
             AttentionBackendName.SDPA_PADDED],
    "cpu": [AttentionBackendName.SDPA_BUCKETED],
}


def _unavailable(name: AttentionBackendName, device: torch.device, dtype: torch.dtype,
                 needs_bias: bool) -> str | None:
    if needs_bias and not BACKENDS[name].supports_bias:
        return "it cannot add the relative-position attention bias this model needs"
    return BACKENDS[name].unavailable_reason(device, dtype)


def select_backend(device: torch.device, dtype: torch.dtype, requested: str | None = None,
                   needs_bias: bool = False, own_attention: str | None = None) -> tuple[AttentionBackend, str]:
    """Pick the attention backend for a model; returns it with a human-readable reason.
    `needs_bias`: the model passes an AttentionBias (only backends with `supports_bias` qualify).
    `own_attention`: why the model computes attention itself; it gets sdpa_grouped for the grouping."""
    if requested:
        try:
            name = AttentionBackendName(requested)
        except ValueError:
            valid = ", ".join(n.value for n in AttentionBackendName)
            raise BackendUnavailable(f"unknown attention backend {requested!r}; valid: {valid}") from None
    if own_attention is not None:
        if requested and name is not AttentionBackendName.SDPA_GROUPED:
            raise BackendUnavailable(f"attention backend {name.value} unavailable: {own_attention}")
        return SdpaGrouped(), f"sdpa_grouped grouping only: {own_attention}"
    if requested:
        why_not = _unavailable(name, device, dtype, needs_bias)
        if why_not:
            raise BackendUnavailable(f"attention backend {name.value} unavailable: {why_not}")
        return BACKENDS[name](), f"{name.value} (requested)"
    skipped = []
    for name in _PREFERENCE.get(device.type, [AttentionBackendName.SDPA_PADDED]):
        why_not = _unavailable(name, device, dtype, needs_bias)
        if why_not is None:
            reason = f"{name.value} (best available on {device.type}"
            reason += f"; skipped: {'; '.join(skipped)})" if skipped else ")"
            return BACKENDS[name](), reason
        skipped.append(f"{name.value}: {why_not}")
    return SdpaPadded(), f"sdpa_padded (fallback; skipped: {'; '.join(skipped)})"
