"""GLiNER2 (gliner2 2.1.0, span architecture: fastino/gliner2-*) on our DeBERTa-v3 backbone.

The backbone runs on the packed batch of prompts (engine.models.gliner2_prompt). From its hidden states [T, D]:

- **count** (`count_pred`, Linear(D,2D)-ReLU-Linear(2D,20)): the argmax over 20 classes at a span task's [P]
  is how many instances of it the text holds (0: none; entities too: gliner2 gates them on it).
- **count-aware queries** (`count_embed`, gliner2's CountLSTM / CountLSTMv2): a GRU unrolled `count` steps from
  each field marker's vector, fed learned step embeddings, then `projector` over [step state ; field vector]
  (v2: a small transformer over the step's fields): one query per (instance, field) [count, F, D]. Entities
  read instance 0 only, so they unroll one step.
- **spans** (`span_rep.span_rep_layer`, GLiNER's markerV0): the logit of (start word i, width k) for a query q
  is q·out_project(relu([project_start(h_i) ; project_end(h_{i+k})])), computed the factorised way gliner2's
  `score_queries` and our GLiNER do (engine.models.gliner.SpanMarkerV0: per-word halves of out_project's
  first layer, its last layer folded into the queries).
- **classification** (`classifier`, Linear(D,2D)-ReLU-Linear(2D,1)) at each [L] marker: one logit per label.

Module names mirror gliner2's state dict (`encoder.*` is the backbone). A checkpoint of another architecture
(`architecture: boundary`), count layer (`count_lstm_moe`) or pooling fails at load naming the config field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from engine.attention import AttentionBackend, select_backend
from engine.batch import PackedBatch, pack
from engine.errors import ModelLoadError, UnsupportedArchitecture
from engine.loading import LoadOptions, resolve_dtype
from engine.models.gliner import SpanMarkerV0, _max_length, backbone_and_head
from engine.models.gliner2_prompt import Gliner2Front, Gliner2Item
from engine.models.layers import Linear
from engine.registry import resolve
from engine.runnable import ModelInfo
from engine.tasks import Task
from engine.weights import BackboneAndHead, read_state_dict, weight_files

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
ENCODER_CONFIG = Path("encoder_config") / "config.json"
BACKBONE_PREFIX = "encoder."
MAX_COUNT = 20  # count_pred's classes and count_embed's step embeddings


@dataclass(frozen=True)
class Gliner2Config:
    max_width: int = 8  # widest span, in words
    counting_layer: str = "count_lstm"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Gliner2Config:
        """Refuses by field name what gliner2 checkpoints can ask for and we do not compute."""
        arch = str(raw.get("architecture") or "span").strip().lower()
        if arch != "span":
            raise UnsupportedArchitecture(f"GLiNER2 config field architecture={arch!r} is not supported; only the "
                                          "span architecture is (fastino/gliner2-base-v1, -large-v1)")
        span_head = raw.get("span_head") or {}
        mode = span_head.get("span_mode", "markerV0")
        if mode != "markerV0":
            raise UnsupportedArchitecture(f"GLiNER2 config field span_head.span_mode={mode!r} is not supported; "
                                          "supported: 'markerV0'")
        counting = raw.get("counting_layer") or "count_lstm"
        if counting not in COUNTING_LAYERS:
            raise UnsupportedArchitecture(f"GLiNER2 config field counting_layer={counting!r} is not supported; "
                                          f"supported: {', '.join(map(repr, COUNTING_LAYERS))}")
        pooling = raw.get("token_pooling", "first")
        if pooling not in ("first", None):
            raise UnsupportedArchitecture(f"GLiNER2 config field token_pooling={pooling!r} is not supported; "
                                          "supported: 'first'")
        width = span_head.get("max_width", raw.get("max_width")) or 8
        return cls(max_width=int(width), counting_layer=counting)


# ---------------------------------------------------------------------------------------------------
# Heads


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """gliner2's create_mlp with dropout 0: Linear-ReLU-Linear (checkpoint names `.0`, `.2`)."""
    return nn.Sequential(Linear(d_in, d_hidden), nn.ReLU(), Linear(d_hidden, d_out))


class _Gru(nn.Module):
    """gliner2's CompileSafeGRU parameters (nn.GRU's names), read by CountLstm."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight_ih_l0 = nn.Parameter(torch.empty(3 * d, d))
        self.weight_hh_l0 = nn.Parameter(torch.empty(3 * d, d))
        self.bias_ih_l0 = nn.Parameter(torch.empty(3 * d))
        self.bias_hh_l0 = nn.Parameter(torch.empty(3 * d))


def _unroll(pos_embedding: nn.Embedding, gru: _Gru, fields: torch.Tensor, count: int) -> torch.Tensor:
    """gliner2's CompileSafeGRU unrolled `count` steps from each field's vector [M, D] -> states [count, M, D]."""
    # The GRU's input at step t is the same step embedding for every field: its projection is [count, 3D].
    gi = torch.addmm(gru.bias_ih_l0, pos_embedding.weight[:count], gru.weight_ih_l0.t())
    h = fields  # [M, D]: the initial state is the field's own vector
    states = []
    for t in range(count):
        gh = torch.addmm(gru.bias_hh_l0, h, gru.weight_hh_l0.t())  # [M, 3D]
        i_r, i_z, i_n = gi[t].chunk(3)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        h = (1 - z) * torch.tanh(i_n + r * h_n) + z * h
        states.append(h)
    return torch.stack(states)


class CountLstm(nn.Module):
    """`counting_layer: count_lstm`: fields [M, D] and a count -> queries [count, M, D], the GRU states through
    `projector` over [state ; field]."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Embedding(MAX_COUNT, d)
        self.gru = _Gru(d)
        self.projector = mlp(2 * d, 4 * d, d)

    def forward(self, fields: torch.Tensor, count: int) -> torch.Tensor:
        out = _unroll(self.pos_embedding, self.gru, fields, min(count, MAX_COUNT))  # [count, M, D]
        return self.projector(torch.cat([out, fields.expand_as(out)], dim=-1))


class DownscaledTransformer(nn.Module):
    """gliner2's DownscaledTransformer: [L, M, D] -> in_projector to 128 -> a 2-layer post-norm transformer
    encoder over the M fields of each step (batch_first: L is the batch) -> out_projector over [that ; input]."""

    def __init__(self, d: int, hidden: int = 128, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.in_projector = Linear(d, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.out_projector = nn.Sequential(Linear(hidden + d, d), nn.ReLU(), Linear(d, d), nn.ReLU(), Linear(d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.transformer(self.in_projector(x))  # [L, M, 128]
        return self.out_projector(torch.cat([h, x], dim=-1))


class CountLstmV2(nn.Module):
    """`counting_layer: count_lstm_v2`: the GRU states plus the field vectors through a DownscaledTransformer
    (fields of one step attend to each other; steps stay independent, so entities may unroll one step)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Embedding(MAX_COUNT, d)
        self.gru = _Gru(d)
        self.transformer = DownscaledTransformer(d)

    def forward(self, fields: torch.Tensor, count: int) -> torch.Tensor:
        out = _unroll(self.pos_embedding, self.gru, fields, min(count, MAX_COUNT))  # [count, M, D]
        return self.transformer(out + fields)


COUNTING_LAYERS = {"count_lstm": CountLstm, "count_lstm_v2": CountLstmV2}


class _SpanRep(nn.Module):
    def __init__(self, d: int, max_width: int) -> None:
        super().__init__()
        self.span_rep_layer = SpanMarkerV0(d, max_width)


class Gliner2Head(nn.Module):
    """Everything after the backbone; parameter names are the checkpoint's."""

    def __init__(self, cfg: Gliner2Config, d: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.span_rep = _SpanRep(d, cfg.max_width)
        self.classifier = mlp(d, 2 * d, 1)
        self.count_pred = mlp(d, 2 * d, MAX_COUNT)
        self.count_embed = COUNTING_LAYERS[cfg.counting_layer](d)

    def span_logits(self, a: torch.Tensor, b: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """One sequence's word terms a, b [W, 4D] (SpanMarkerV0.word_terms) and queries [Q, D] ->
        [Q, W, K] logits; spans past the last word are -inf."""
        marker = self.span_rep.span_rep_layer
        n, k = a.shape[0], self.cfg.max_width
        q, bias = marker.label_terms(queries)  # [4D, Q], [Q]
        ends = torch.arange(n, device=a.device)[:, None] + torch.arange(k, device=a.device)[None, :]  # [W, K]
        hidden = a[:, None, :] + b[ends.clamp(max=n - 1)]  # [W, K, 4D]
        logits = (torch.relu(hidden) @ q + bias).permute(2, 0, 1)  # [Q, W, K]
        return logits.masked_fill(~(ends < n)[None], float("-inf"))


# ---------------------------------------------------------------------------------------------------
# The runnable


@dataclass(frozen=True)
class Gliner2Output:
    """One work item's outputs, float32 on the host, per schema task in order: span tasks [count, F, W, K]
    logits (entities: count 1; None when the count is 0), classification tasks [labels] logits."""

    counts: list[int]
    logits: list[torch.Tensor | None]


@dataclass(frozen=True)
class Gliner2Batch:
    packed: PackedBatch
    items: tuple[Gliner2Item, ...]


class Gliner2Model(BackboneAndHead):
    """A `Runnable`: backbone + GLiNER2 heads; one `Gliner2Output` per work item."""

    head: Gliner2Head

    def __init__(self, info: ModelInfo, cfg: Gliner2Config, backbone: nn.Module, head: Gliner2Head,
                 front: Gliner2Front, attention: AttentionBackend) -> None:
        super().__init__(info, backbone, head, attention)
        self.cfg = cfg
        self._front = front

    @property
    def front(self) -> Gliner2Front:
        return self._front

    def make_batch(self, items: Sequence[Gliner2Item]) -> Gliner2Batch:
        return Gliner2Batch(pack([it.ids for it in items]), tuple(items))

    @torch.inference_mode()
    def forward(self, batch: Gliner2Batch) -> list[Gliner2Output]:
        device = self.info.device
        _, hidden = self.encode(batch.packed)  # [T, D]
        offsets, o = [], 0
        for it in batch.items:
            offsets.append(o)
            o += len(it)
        # Every item's word vectors in one gather, their span word terms in one pass: [N, 4D] each.
        word_rows = torch.tensor([offsets[i] + w for i, it in enumerate(batch.items) for w in it.word_at],
                                 device=device)
        a_all, b_all = self.head.span_rep.span_rep_layer.word_terms(hidden[word_rows])
        # Counts of every span task of every item in one forward of count_pred (one host sync).
        p_rows = [offsets[i] + it.markers[j][0] for i, it in enumerate(batch.items)
                  for j, span in enumerate(it.span) if span]
        counts = (self.head.count_pred(hidden[torch.tensor(p_rows, device=device)]).argmax(-1).tolist()
                  if p_rows else [])
        outputs = []
        next_count = iter(counts)
        w0 = 0
        for i, it in enumerate(batch.items):
            n = len(it.word_at)
            a, b = a_all[w0:w0 + n], b_all[w0:w0 + n]
            w0 += n
            task_counts: list[int] = []
            logits: list[torch.Tensor | None] = []
            queries, shapes = [], []
            for j, span in enumerate(it.span):
                fields = hidden[[offsets[i] + m for m in it.markers[j][1:]]]  # [F, D]
                if not span:
                    task_counts.append(0)
                    logits.append(self.head.classifier(fields).squeeze(-1).float().cpu())  # [F]
                    continue
                count = next(next_count)
                task_counts.append(count)
                logits.append(None)
                if count <= 0 or len(fields) == 0:
                    continue
                steps = 1 if it.single[j] else count
                q = self.head.count_embed(fields, steps)  # [steps, F, D]
                queries.append(q.reshape(-1, q.shape[-1]))
                shapes.append((j, q.shape[0], q.shape[1]))
            if queries:
                scores = self.head.span_logits(a, b, torch.cat(queries)).float().cpu()  # [sum Q, W, K]
                start = 0
                for j, steps, f in shapes:
                    logits[j] = scores[start:start + steps * f].reshape(steps, f, n, -1)
                    start += steps * f
            outputs.append(Gliner2Output(task_counts, logits))
        return outputs

    def split_output(self, out: list[Gliner2Output], batch: Gliner2Batch) -> list[Gliner2Output]:
        return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: cannot read ({e})") from e
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return raw


def load_gliner2(path: str | Path, options: LoadOptions = LoadOptions()) -> Gliner2Model:
    """RUNTIMES["gliner2"]: a gliner2 checkpoint directory (config.json, encoder_config/config.json,
    model.safetensors, tokenizer.json) -> Gliner2Model."""
    model_dir = Path(path)
    if not (model_dir / ENCODER_CONFIG).is_file():
        raise ModelLoadError(f"{model_dir}: {ENCODER_CONFIG} is missing (not a GLiNER2 checkpoint)")
    raw = _read_json(model_dir / CONFIG_FILE)
    cfg = Gliner2Config.from_json(raw)
    encoder = _read_json(model_dir / ENCODER_CONFIG)
    arch, entry = resolve({k: v for k, v in encoder.items() if k != "architectures"})
    if entry.module != "deberta_v2":
        raise UnsupportedArchitecture(f"GLiNER2 on a {encoder.get('model_type')!r} encoder is not supported; "
                                      "supported: deberta-v2 (DeBERTa-v3)")
    backbone_cls = entry.backbone_class()
    state = read_state_dict(weight_files(model_dir))
    emb = BACKBONE_PREFIX + "embeddings.word_embeddings.weight"
    if emb not in state:
        raise ModelLoadError(f"{model_dir}: checkpoint lacks {emb}")
    bcfg = replace(backbone_cls.config_class.from_hf_config(encoder), vocab_size=state[emb].shape[0])
    device = torch.device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    attention, reason = select_backend(device, dtype, options.attention_backend,
                                       needs_bias=getattr(backbone_cls, "needs_attention_bias", False),
                                       own_attention=getattr(backbone_cls, "own_attention", None))
    tok_path = model_dir / "tokenizer.json"
    if not tok_path.is_file():
        raise ModelLoadError(f"{model_dir}: tokenizer.json is missing (only fast tokenizers are supported)")
    max_length = _max_length(model_dir, bcfg.max_length, options.max_length)
    front = Gliner2Front(Tokenizer.from_file(str(tok_path)), max_length, cfg.max_width)
    if max(front.special_ids) >= bcfg.vocab_size:
        raise ModelLoadError(f"{model_dir}: the tokenizer puts GLiNER2's special tokens at ids up to "
                             f"{max(front.special_ids)}, past the checkpoint's {bcfg.vocab_size} embeddings: the "
                             "tokenizer is not the one saved with these weights")
    backbone, head = backbone_and_head(backbone_cls, bcfg, lambda: Gliner2Head(cfg, bcfg.hidden_size), state,
                                       BACKBONE_PREFIX, dtype, device, model_dir)
    info = ModelInfo(architecture=f"gliner2_span/{arch}", family="gliner2", task=Task.SCHEMA_EXTRACTION,
                     hidden_size=bcfg.hidden_size, output_dim=cfg.max_width, max_length=max_length, dtype=dtype,
                     device=device, attention_backend=attention.name.value, attention_reason=reason,
                     runtime="gliner2")
    log.info("loaded GLiNER2 %s (%s, %s, %s) attention=%s", model_dir, arch, dtype, device, reason)
    return Gliner2Model(info, cfg, backbone, head, front, attention)
