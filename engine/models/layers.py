"""Building blocks shared by the encoder families. Everything runs on packed [T, ...] tensors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.attention import AttentionBackend, AttentionBias, AttentionSpec
from engine.errors import UnsupportedArchitecture


@dataclass(frozen=True)
class AttentionContext:
    """Attention backend plus its per-batch metadata, passed explicitly down the layers.

    `bias`: an additive relative-position bias a model attaches for this batch (MPNet); layers that
    call the context need not know about it.
    """

    backend: AttentionBackend
    meta: Any
    bias: AttentionBias | None = None

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 spec: AttentionSpec) -> torch.Tensor:
        if self.bias is None:
            return self.backend.attend(q, k, v, self.meta, spec)
        return self.backend.attend(q, k, v, self.meta, spec, self.bias)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


def activation(name: str, field: str = "hidden_act"):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise UnsupportedArchitecture(
            f"config field {field}={name!r} is not supported; supported: {sorted(ACTIVATIONS)}"
        ) from None


class FusedQKV(nn.Module):
    """One Linear producing q, k and v; checkpoints' separate q/k/v weights are concatenated at load."""

    def __init__(self, hidden: int, num_heads: int, head_dim: int, num_kv_heads: int | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        self.head_dim = head_dim
        self.qkv = nn.Linear(hidden, (num_heads + 2 * self.num_kv_heads) * head_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = x.shape[0]
        q_size = self.num_heads * self.head_dim
        kv_size = self.num_kv_heads * self.head_dim
        q, k, v = self.qkv(x).split([q_size, kv_size, kv_size], dim=-1)  # [T, ...]
        return (q.view(t, self.num_heads, self.head_dim),  # [T, H, D]
                k.view(t, self.num_kv_heads, self.head_dim),  # [T, Hkv, D]
                v.view(t, self.num_kv_heads, self.head_dim))


def fuse_qkv(state: dict[str, torch.Tensor], prefix_pairs: list[tuple[list[str], str]]) -> None:
    """In place: for each ([q, k, v] source prefixes, target prefix), concatenate weight and bias along
    the output dim. Also used for other split projections (gate + up -> one gated-MLP input)."""
    for sources, target in prefix_pairs:
        for suffix in ("weight", "bias"):
            keys = [f"{s}.{suffix}" for s in sources]
            if all(k in state for k in keys):
                state[f"{target}.{suffix}"] = torch.cat([state.pop(k) for k in keys], dim=0)


# ---------------------------------------------------------------------------------------------------
# Rotary position embedding and gated MLPs (ModernBERT, decoder embedders)


@dataclass(frozen=True)
class Rotary:
    """RoPE in the rotate-half convention (transformers' "default" rope type).

    Stateless: the frequencies are computed per batch from the position ids (a few hundred flops), so a
    model built on the meta device has no buffer to materialise. cos/sin stay in fp32, and rotation
    runs in fp32 whatever the model dtype, as transformers does.
    """

    head_dim: int
    theta: float

    def cos_sin(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """position_ids [T] -> (cos, sin), each [T, head_dim] fp32."""
        exponent = torch.arange(0, self.head_dim, 2, dtype=torch.float, device=position_ids.device) / self.head_dim
        inv_freq = 1.0 / (self.theta ** exponent)  # [D/2]
        freqs = position_ids[:, None].float() * inv_freq[None, :]  # [T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # [T, D]
        return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [T, H, D] rotated by position; cos/sin [T, D] from `Rotary.cos_sin`."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)  # [T, H, D/2] each
    rotated = torch.cat((-x2, x1), dim=-1)  # [T, H, D]
    return (xf * cos[:, None, :] + rotated * sin[:, None, :]).to(x.dtype)


class GatedMLP(nn.Module):
    """act(x·Wi₁) * (x·Wi₂) -> Wo: GeGLU/SwiGLU. `Wi` holds both halves, activated half first
    (ModernBERT's `mlp.Wi` layout; separate gate/up projections are concatenated into it at load)."""

    def __init__(self, hidden: int, intermediate: int, act: Callable[[torch.Tensor], torch.Tensor],
                 bias: bool = False) -> None:
        super().__init__()
        self.Wi = nn.Linear(hidden, 2 * intermediate, bias=bias)
        self.act = act
        self.Wo = nn.Linear(intermediate, hidden, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp, gate = self.Wi(x).chunk(2, dim=-1)  # [T, I] each
        return self.Wo(self.act(inp) * gate)


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in fp32 and cast back before the weight (as transformers' Qwen/Llama)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)
