"""Building blocks shared by the encoder families. Everything runs on packed [T, ...] tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.attention import AttentionBackend, AttentionSpec
from engine.errors import UnsupportedArchitecture


@dataclass(frozen=True)
class AttentionContext:
    """Attention backend plus its per-batch metadata, passed explicitly down the layers."""

    backend: AttentionBackend
    meta: Any

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 spec: AttentionSpec) -> torch.Tensor:
        return self.backend.attend(q, k, v, self.meta, spec)


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
    """In place: for each ([q, k, v] source prefixes, target prefix), concatenate weight and bias."""
    for sources, target in prefix_pairs:
        for suffix in ("weight", "bias"):
            keys = [f"{s}.{suffix}" for s in sources]
            if all(k in state for k in keys):
                state[f"{target}.{suffix}"] = torch.cat([state.pop(k) for k in keys], dim=0)
