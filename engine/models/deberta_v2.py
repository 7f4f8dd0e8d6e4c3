"""DeBERTa-v2 / v3 (deberta-v3-*, NLI and zero-shot cross-encoders, …): BERT's post-LN layer with
disentangled attention.

Attention scores are content-to-content plus, from relative positions, content-to-position (c2p: each
query against the key projection of the relative-position embeddings) and position-to-content (p2c: each
key against their query projection), all scaled by 1/sqrt(head_dim * (1 + number of position terms)).
The relative positions are log-bucketed (`position_buckets`, `max_relative_positions`) and the shared
relative embeddings (`encoder.rel_embeddings`, optionally LayerNorm'd: `norm_rel_ebd`) are projected by
each layer's own key/query projections (`share_att_key`, DeBERTa-v3) or by separate `pos_key_proj` /
`pos_query_proj`.

The position terms depend on the queries and keys, so no attention kernel can take them as an additive
bias: this family always computes attention itself, on runs of equal-length sequences (the grouping of
the `sdpa_grouped` backend, which loading selects for it on every device). Batches are sorted by length,
so runs are long; there is no padding and no mask. Per run: scores = q·kᵀ + c2p + p2c with matmuls and a
gather by relative-position index, softmax, @ v. DeBERTa-v2-xlarge's convolution after the first layer
(`conv_kernel_size`) runs per run as well, with zero padding at each sequence's ends as the reference's
masked padded batch has.

Module names mirror transformers' DebertaV2Model; the only structural change is the fused QKV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.batch import PackedBatch
from engine.errors import UnsupportedArchitecture
from engine.heads.classification import SequenceClassificationHead, TokenClassificationHead
from engine.heads.specs import Head
from engine.models.bert import BertDenseLN, BertIntermediate
from engine.models.conversion import Conversion, Fuse
from engine.models.family import Backbone
from engine.models.layers import AttentionContext, FusedQKV, Linear, activation

POSITION_TERMS = ("c2p", "p2c")
OWN_ATTENTION = ("DeBERTa's disentangled attention adds position terms computed from each layer's queries and "
                 "keys, which no attention kernel takes; the model computes attention itself per run of "
                 "equal-length sequences (no padding)")


@dataclass(frozen=True)
class DebertaV2Config:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    head_dim: int
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 0
    layer_norm_eps: float = 1e-7
    embedding_size: int = 0  # != hidden_size: a bias-free `embed_proj` after the sum
    position_biased_input: bool = True  # absolute position embeddings added to the input (v2); v3: False
    relative_attention: bool = False
    pos_att_type: tuple[str, ...] = ()  # subset of ("c2p", "p2c")
    position_buckets: int = -1  # <= 0: no log buckets
    max_relative_positions: int = -1  # < 1: max_position_embeddings
    share_att_key: bool = False
    norm_rel_ebd: bool = False  # LayerNorm over the relative embeddings ("layer_norm")
    conv_kernel_size: int = 0  # > 0: ConvLayer after the first layer (deberta-v2-xlarge)
    conv_groups: int = 1
    conv_act: str = "tanh"
    pooler_hidden_act: str = "gelu"

    @property
    def max_length(self) -> int:
        """Relative attention has no length limit, but absolute positions and the tokenizer have one."""
        return self.max_position_embeddings

    @property
    def max_relative(self) -> int:
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    @property
    def att_span(self) -> int:
        """Half the number of relative-embedding rows (transformers' `pos_ebd_size`)."""
        return self.position_buckets if self.position_buckets > 0 else self.max_relative

    @property
    def scale_factor(self) -> int:
        return 1 + len(self.pos_att_type)

    @classmethod
    def from_hf_config(cls, hf: dict[str, Any]) -> DebertaV2Config:
        pos_att = hf.get("pos_att_type") or []
        if isinstance(pos_att, str):
            pos_att = [x.strip() for x in pos_att.lower().split("|")]
        unknown = [p for p in pos_att if p not in POSITION_TERMS]
        if unknown:
            raise UnsupportedArchitecture(f"config field pos_att_type={pos_att!r} is not supported for deberta-v2; "
                                          f"supported terms: {', '.join(POSITION_TERMS)}")
        norm_rel = [x.strip() for x in str(hf.get("norm_rel_ebd", "none")).lower().split("|")]
        if set(norm_rel) - {"none", "layer_norm"}:
            raise UnsupportedArchitecture(f"config field norm_rel_ebd={hf.get('norm_rel_ebd')!r} is not supported; "
                                          "supported: 'none', 'layer_norm'")
        kernel = hf.get("conv_kernel_size", 0) or 0
        if kernel > 0 and kernel % 2 == 0:
            raise UnsupportedArchitecture(f"config field conv_kernel_size={kernel} is not supported; "
                                          "only odd kernel sizes keep the sequence length")
        hidden = hf["hidden_size"]
        pooler = hf.get("pooler_hidden_size", hidden)
        if pooler != hidden:
            raise UnsupportedArchitecture(f"config field pooler_hidden_size={pooler} is not supported; "
                                          f"it must equal hidden_size={hidden}")
        if hf.get("z_steps", 0) or 0:
            raise UnsupportedArchitecture("config field z_steps is not supported for deberta-v2")
        for field in ("hidden_act", "pooler_hidden_act"):
            activation(hf.get(field, "gelu"), field)
        activation(hf.get("conv_act", "tanh"), "conv_act")
        heads = hf["num_attention_heads"]
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hidden,
            num_hidden_layers=hf["num_hidden_layers"],
            num_attention_heads=heads,
            intermediate_size=hf["intermediate_size"],
            head_dim=hf.get("attention_head_size") or hidden // heads,
            hidden_act=hf.get("hidden_act", "gelu"),
            max_position_embeddings=hf.get("max_position_embeddings", 512),
            type_vocab_size=hf.get("type_vocab_size", 0),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-7),
            embedding_size=hf.get("embedding_size") or hidden,
            position_biased_input=hf.get("position_biased_input", True),
            relative_attention=hf.get("relative_attention", False),
            pos_att_type=tuple(pos_att),
            position_buckets=hf.get("position_buckets", -1),
            max_relative_positions=hf.get("max_relative_positions", -1),
            share_att_key=hf.get("share_att_key", False),
            norm_rel_ebd="layer_norm" in norm_rel,
            conv_kernel_size=kernel,
            conv_groups=hf.get("conv_groups", 1),
            conv_act=hf.get("conv_act", "tanh"),
            pooler_hidden_act=hf.get("pooler_hidden_act", "gelu"),
        )


def log_bucket_position(relative_pos: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """transformers' make_log_bucket_position, same arithmetic: exact within ±bucket_size/2, log beyond."""
    sign = torch.sign(relative_pos)
    mid = bucket_size // 2
    abs_pos = torch.where((relative_pos < mid) & (relative_pos > -mid),
                          torch.tensor(mid - 1).type_as(relative_pos), torch.abs(relative_pos))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid))
                         * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, relative_pos.type_as(log_pos), log_pos * sign)


def relative_rows(length: int, cfg: DebertaV2Config, device: torch.device) -> torch.Tensor:
    """[2L-1]: the relative-embedding row of each distance d = query - key, from -(L-1) up to L-1 (bucketed and
    clamped as transformers has it: row = clamp(bucket(d) + span, 0, 2·span - 1))."""
    distances = torch.arange(-(length - 1), length, dtype=torch.long, device=device)  # [2L-1]
    if cfg.position_buckets > 0 and cfg.max_relative > 0:  # bucket the 2L-1 distances, not the L² pairs
        distances = log_bucket_position(distances, cfg.position_buckets, cfg.max_relative).to(torch.long)
    span = cfg.att_span
    return torch.clamp(distances + span, 0, 2 * span - 1)


def by_distance(scores: torch.Tensor, descending: bool) -> torch.Tensor:
    """[b, H, L, 2L-1] scores of each query (rows) against each distance (columns, d = query - key ascending, or
    descending with `descending`) -> [b, H, L, L] (query, key) as a strided view, no copy: the distance of
    (i, j) is a diagonal of the columns, so stepping one row moves 2L-2 along the storage. With distances
    descending, entry (i, j) sits at column j - i + L - 1 of row i (content -> position, rows are queries);
    ascending, at column i - j + L - 1 of row j (position -> content, rows are keys: the view is transposed)."""
    b, h, length, width = scores.shape
    assert width == 2 * length - 1 and scores.is_contiguous()
    batch_strides = (h * length * width, length * width)
    inner = (width - 1, 1) if descending else (1, width - 1)
    return scores.as_strided((b, h, length, length), (*batch_strides, *inner), scores.storage_offset() + length - 1)


# ---------------------------------------------------------------------------------------------------
# Blocks


class DebertaV2Embeddings(nn.Module):
    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__()
        e = cfg.embedding_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, e)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, e) if cfg.position_biased_input else None
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, e) if cfg.type_vocab_size > 0 else None
        self.embed_proj = Linear(e, cfg.hidden_size, bias=False) if e != cfg.hidden_size else None
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        x = self.word_embeddings(batch.input_ids)  # [T, E]
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(batch.position_ids)
        if self.token_type_embeddings is not None:
            types = batch.token_type_ids if batch.token_type_ids is not None else torch.zeros_like(batch.input_ids)
            x = x + self.token_type_embeddings(types)
        if self.embed_proj is not None:
            x = self.embed_proj(x)  # [T, C]
        return self.LayerNorm(x)


class DisentangledSelfAttention(FusedQKV):
    """q/k/v fused into `qkv`; `pos_key_proj` / `pos_query_proj` only without `share_att_key`."""

    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__(cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim)
        self.cfg = cfg
        self.terms = cfg.pos_att_type if cfg.relative_attention else ()
        inner = cfg.num_attention_heads * cfg.head_dim
        if not cfg.share_att_key:
            if "c2p" in self.terms:
                self.pos_key_proj = Linear(cfg.hidden_size, inner)
            if "p2c" in self.terms:
                self.pos_query_proj = Linear(cfg.hidden_size, inner)

    def position_projections(self, rel: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """rel [2S, C] -> (pos_key, pos_query / scale), each [H, 2S, D] or None where the term is off."""
        if not self.terms or rel is None:
            return None, None
        rows = rel.shape[0]
        if self.cfg.share_att_key:
            q, k, _ = super().forward(rel)  # [2S, H, D] each
        else:
            q = self.pos_query_proj(rel).view(rows, self.num_heads, self.head_dim) if "p2c" in self.terms else None
            k = self.pos_key_proj(rel).view(rows, self.num_heads, self.head_dim) if "c2p" in self.terms else None
        return (k.transpose(0, 1) if k is not None and "c2p" in self.terms else None,  # [H, 2S, D]
                q.transpose(0, 1) / self.scale if q is not None and "p2c" in self.terms else None)

    @property
    def scale(self) -> float:
        return math.sqrt(self.head_dim * self.cfg.scale_factor)

    def forward(self, x: torch.Tensor, groups: list, pos: tuple[torch.Tensor | None, torch.Tensor | None],
                rows) -> torch.Tensor:
        q, k, v = super().forward(x)  # [T, H, D] each
        out = torch.empty_like(q)
        for g in groups:  # runs of equal-length sequences: (start, count, length)
            end = g.start + g.count * g.length
            out[g.start:end] = self._attend(q[g.start:end], k[g.start:end], v[g.start:end], g.count, g.length,
                                            pos, rows)
        return out.reshape(x.shape[0], -1)  # [T, H*D]

    def _attend(self, q, k, v, b: int, length: int, pos, rows) -> torch.Tensor:
        """softmax((q·kᵀ + c2p + p2c) / scale)·v for b sequences of one length. The two relative terms are one
        GEMM each against the position rows of every distance (rows(length), [2L-1]) and read back per (query,
        key) through a strided view (by_distance): no gather and no division over the [L, L] scores; SDPA
        fuses the rest."""
        shape = (b, length, self.num_heads, self.head_dim)
        q = (q.reshape(shape).transpose(1, 2) / self.scale).contiguous()  # [b, H, L, D], scaled once
        k = k.reshape(shape).transpose(1, 2).contiguous()
        v = v.reshape(shape).transpose(1, 2)
        pos_key, pos_query = pos
        bias = None
        if pos_key is not None or pos_query is not None:
            at = rows(length)  # [2L-1], distances ascending
            if pos_key is not None:  # content -> position: q_i · pos_key[row(i - j)]
                c2p = torch.matmul(q, pos_key[:, at.flip(0)].transpose(-1, -2))  # [b, H, L, 2L-1]
                bias = by_distance(c2p, descending=True)
            if pos_query is not None:  # position -> content: k_j · pos_query[row(i - j)]
                p2c = by_distance(torch.matmul(k, pos_query[:, at].transpose(-1, -2)), descending=False)
                bias = p2c if bias is None else bias + p2c
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)  # [b, H, L, D]
        return out.transpose(1, 2).reshape(b * length, self.num_heads, self.head_dim)


class DebertaV2Attention(nn.Module):
    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__()
        self.self = DisentangledSelfAttention(cfg)
        self.output = BertDenseLN(cfg.num_attention_heads * cfg.head_dim, cfg.hidden_size, cfg.layer_norm_eps)


class DebertaV2Layer(nn.Module):
    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__()
        self.attention = DebertaV2Attention(cfg)
        # dense + hidden_act: same names and shapes; reads hidden_size, intermediate_size, hidden_act only.
        self.intermediate = BertIntermediate(cfg)  # pyright: ignore[reportArgumentType]
        self.output = BertDenseLN(cfg.intermediate_size, cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, groups: list, pos, rows) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x, groups, pos, rows), x)
        return self.output(self.intermediate(x), x)


class ConvLayer(nn.Module):
    """After the first layer: LayerNorm(layer output + act(conv1d(embeddings))), per sequence with zero
    padding at both ends (deberta-v2-xlarge/xxlarge)."""

    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__()
        k = cfg.conv_kernel_size
        self.conv = nn.Conv1d(cfg.hidden_size, cfg.hidden_size, k, padding=(k - 1) // 2, groups=cfg.conv_groups)
        self.act = activation(cfg.conv_act, "conv_act")
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, embeddings: torch.Tensor, residual: torch.Tensor, groups: list) -> torch.Tensor:
        out = torch.empty_like(embeddings)
        for g in groups:
            end = g.start + g.count * g.length
            x = embeddings[g.start:end].reshape(g.count, g.length, -1).transpose(1, 2)  # [b, C, L]
            out[g.start:end] = self.conv(x).transpose(1, 2).reshape(end - g.start, -1)
        return self.LayerNorm(residual + self.act(out))


class DebertaV2Encoder(nn.Module):
    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(DebertaV2Layer(cfg) for _ in range(cfg.num_hidden_layers))
        if cfg.relative_attention:
            self.rel_embeddings = nn.Embedding(2 * cfg.att_span, cfg.hidden_size)
        if cfg.norm_rel_ebd:
            self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.conv = ConvLayer(cfg) if cfg.conv_kernel_size > 0 else None

    def rel_embedding(self) -> torch.Tensor | None:
        if not hasattr(self, "rel_embeddings"):
            return None
        rel = self.rel_embeddings.weight  # [2S, C]
        return self.LayerNorm(rel) if hasattr(self, "LayerNorm") else rel


# q/k/v projections fused (one GEMM); the position-id buffer is not a weight.
DEBERTA_CONVERSION = Conversion(drop=(r"^embeddings\.position_ids$",),
                                fusions=(Fuse(("query_proj", "key_proj", "value_proj"), "qkv"),))


class DebertaV2Model(Backbone):
    """Backbone: PackedBatch -> hidden states [T, C]."""

    config_class = DebertaV2Config
    backbone_prefixes = ("deberta.", "")
    conversion = DEBERTA_CONVERSION
    heads = frozenset({Head.SEQUENCE_CLASSIFICATION, Head.TOKEN_CLASSIFICATION})
    own_attention = OWN_ATTENTION  # loading gives it the sdpa_grouped backend for its length groups

    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = DebertaV2Embeddings(cfg)
        self.encoder = DebertaV2Encoder(cfg)

    def forward(self, batch: PackedBatch, attn: AttentionContext) -> torch.Tensor:
        groups = attn.meta  # sdpa_grouped's runs of equal-length sequences (start, count, length)
        device = batch.input_ids.device
        rows = cache(lambda length: relative_rows(length, self.config, device))  # once per length
        rel = self.encoder.rel_embedding()
        x = emb = self.embeddings(batch)  # [T, C]
        for i, layer in enumerate(cast(list[DebertaV2Layer], self.encoder.layer)):
            x = layer(x, groups, layer.attention.self.position_projections(rel), rows)
            if i == 0 and self.encoder.conv is not None:
                x = self.encoder.conv(emb, x, groups)
        return x  # [T, C]

    @staticmethod
    def sequence_head(cfg: DebertaV2Config, num_labels: int) -> nn.Module:
        """DebertaV2ForSequenceClassification: ContextPooler (first token -> dense -> pooler_hidden_act),
        then `classifier`."""
        return SequenceClassificationHead(cfg.hidden_size, num_labels, ContextPooler(cfg))

    @staticmethod
    def token_head(cfg: DebertaV2Config, num_labels: int) -> nn.Module:
        return TokenClassificationHead(cfg.hidden_size, num_labels)


class ContextPooler(nn.Module):
    def __init__(self, cfg: DebertaV2Config) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = activation(cfg.pooler_hidden_act, "pooler_hidden_act")

    def forward(self, first_tokens: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(first_tokens))

