"""GLiNER zero-shot NER (gliner 0.2.x uni-encoder checkpoints) on our DeBERTa-v2/v3 and ModernBERT backbones.

One sequence per (text window, label set): `[CLS] <<ENT>> label₁ <<ENT>> label₂ … <<SEP>> word₁ … [SEP]`,
tokenised split into words (words by the regex `\\w+(?:[-_]\\w+)*|\\S`). The backbone runs on the packed batch;
label vectors are the hidden states at the `<<ENT>>` tokens, word vectors those of each word's first sub-token,
both through `projection` when the backbone's width differs from GLiNER's `hidden_size` D. A one-layer BiLSTM
(`rnn.lstm`) contextualises the words of each sequence. Two heads:

- span (`span_mode: markerV0`): every span of width < `max_width` (start word i, end word j) is
  `out_project(relu([project_start(h_i) ; project_end(h_j)]))` and its logit for label c is its dot product with
  `prompt_rep_layer(label_c)`. Computed without materialising one D-vector per span (the documented trick):
  `out_project` is Linear(2D,4D)-ReLU-Linear(4D,D), and relu of a concatenation is the concatenation of relus, so
  its first layer splits into a start half and an end half computed once per word (A_i + B_j per span), and its
  last layer folds into the label vectors (W₂ᵀ·p_c, b₂·p_c): one span costs a 4D add and a 4D×C product instead
  of 2D×4D + 4D×D + D×C multiply-adds (12 widths per word, so this is where the reference spends its time).
- token (`span_mode: token_level`): per (word, label) start/end/inside logits from `scorer`
  (proj_token, proj_label, out_mlp over [t₀ ; l₀ ; t₁⊙l₁]); out_mlp's first layer is split the same way, so
  only the t₁⊙l₁ third runs per (word, label).

Module names mirror gliner's checkpoints (`token_rep_layer.bert_layer.model.*` is the backbone,
`token_rep_layer.projection`, `rnn.lstm`, `span_rep_layer.span_rep_layer.*`, `prompt_rep_layer.*`, `scorer.*`).
Texts longer than the model's limits become overlapping word windows (overlap `max_width - 1` words, so every
span the head can score lies whole in some window); engine.span_decoding merges them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import torch
from tokenizers import Tokenizer
from torch import nn
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

from engine.attention import AttentionBackend, select_backend
from engine.batch import PackedBatch, pack
from engine.errors import InvalidInput, ModelLoadError, UnsupportedArchitecture
from engine.loading import LoadOptions, resolve_dtype
from engine.models.conversion import convert_state_dict
from engine.models.layers import Linear, pack_linear_weights
from engine.registry import resolve
from engine.runnable import ModelInfo
from engine.tasks import Task
from engine.weights import BackboneAndHead, assign_weights, read_state_dict, weight_files

log = logging.getLogger(__name__)

CONFIG_FILE = "gliner_config.json"
WORD_PATTERN = re.compile(r"\w+(?:[-_]\w+)*|\S")
BACKBONE_PREFIX = "token_rep_layer.bert_layer.model."
H = TypeVar("H", bound=nn.Module)
SPAN_MODES = ("markerV0", "token_level")
BACKBONE_FAMILIES = ("deberta_v2", "modernbert")  # engine.models modules GLiNER runs on


@dataclass(frozen=True)
class GlinerConfig:
    hidden_size: int  # D: GLiNER's width (the backbone's is projected to it when it differs)
    span_mode: str = "markerV0"
    max_width: int = 12
    max_len: int = 384  # words per window
    num_rnn_layers: int = 1
    ent_token: str = "<<ENT>>"
    sep_token: str = "<<SEP>>"
    class_token_index: int = -1  # the <<ENT>> token id; -1: look it up in the tokenizer
    embed_ent_token: bool = True  # False: a label's vector is the token after its <<ENT>>
    model_type: str = "gliner_uni_encoder_span"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> GlinerConfig:
        """Refuses by field name what these checkpoints can ask for and we do not compute."""
        model_type = str(raw.get("model_type") or "gliner")
        if raw.get("labels_encoder") or "bi_encoder" in model_type:
            raise UnsupportedArchitecture(f"GLiNER bi-encoder checkpoints ({model_type}, labels_encoder) are not "
                                          "supported; uni-encoder span and token-level models are")
        for name in ("labels_decoder", "relations_layer", "post_fusion_schema", "span_encoder_config"):
            if raw.get(name):
                raise UnsupportedArchitecture(f"GLiNER config field {name}={raw[name]!r} is not supported")
        if "relex" in model_type or "decoder" in model_type or "streaming" in model_type:
            raise UnsupportedArchitecture(f"GLiNER model_type {model_type!r} is not supported; supported: "
                                          "gliner_uni_encoder_span, gliner_uni_encoder_token")
        if raw.get("fuse_layers"):
            raise UnsupportedArchitecture("GLiNER config field fuse_layers=true is not supported")
        if raw.get("precomputed_prompts_mode"):
            raise UnsupportedArchitecture("GLiNER config field precomputed_prompts_mode is not supported")
        if raw.get("represent_spans"):
            raise UnsupportedArchitecture("GLiNER config field represent_spans=true is not supported")
        pooling = raw.get("subtoken_pooling", "first")
        if pooling != "first":
            raise UnsupportedArchitecture(f"GLiNER config field subtoken_pooling={pooling!r} is not supported; "
                                          "supported: 'first'")
        span_mode = str(raw.get("span_mode", "markerV0")).replace("token-level", "token_level")
        if "token" in model_type:
            span_mode = "token_level"
        if span_mode not in SPAN_MODES:
            raise UnsupportedArchitecture(f"GLiNER span_mode {span_mode!r} is not supported; supported: "
                                          f"{', '.join(SPAN_MODES)}")
        rnn = int(raw.get("num_rnn_layers", 1))
        return cls(hidden_size=int(raw.get("hidden_size", 512)), span_mode=span_mode,
                   max_width=int(raw.get("max_width", 12)), max_len=int(raw.get("max_len", 384)),
                   num_rnn_layers=rnn, ent_token=raw.get("ent_token", "<<ENT>>"),
                   sep_token=raw.get("sep_token", "<<SEP>>"),
                   class_token_index=int(raw.get("class_token_index", -1)),
                   embed_ent_token=bool(raw.get("embed_ent_token", True)),
                   model_type="gliner_uni_encoder_token" if span_mode == "token_level" else "gliner_uni_encoder_span")


# ---------------------------------------------------------------------------------------------------
# Work items: what a request becomes before the device sees it


@dataclass(frozen=True)
class GlinerItem:
    """One sequence: a label prompt and a window of one text's words."""

    ids: list[int]
    label_at: list[int]  # token index of each label's vector
    word_at: list[int]  # token index of each word's first sub-token; -1 when truncation left it none

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Window:
    text: int  # index into the request's texts
    first_word: int  # the window's words in that text: [first_word, end_word)
    end_word: int


@dataclass(frozen=True)
class Prepared:
    """A request as work items: `items[i]` covers `windows[i]`; `words[t]` are text t's (start, end) chars."""

    labels: list[str]
    items: list[GlinerItem]
    windows: list[Window]
    words: list[list[tuple[int, int]]]


def split_words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in WORD_PATTERN.finditer(text)]


class GlinerFront:
    """Turns (texts, labels) into work items. Needs no weights: the pool keeps it after a drop."""

    def __init__(self, tokenizer: Tokenizer, cfg: GlinerConfig, max_length: int) -> None:
        self.cfg = cfg
        self.max_length = max_length  # tokens per sequence, special tokens included
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length)  # reported as overflow; windows then avoid it
        ent = cfg.class_token_index if cfg.class_token_index >= 0 else tokenizer.token_to_id(cfg.ent_token)
        if ent is None or tokenizer.token_to_id(cfg.sep_token) is None:
            raise ModelLoadError(f"the tokenizer lacks GLiNER's marker tokens {cfg.ent_token} / {cfg.sep_token}")
        self.ent_id = ent
        with_special = tokenizer.encode(["x"], is_pretokenized=True).ids
        bare = tokenizer.encode(["x"], is_pretokenized=True, add_special_tokens=False).ids
        self.n_special = len(with_special) - len(bare)

    def prompt(self, labels: Sequence[str]) -> list[str]:
        words: list[str] = []
        for label in labels:
            words += [self.cfg.ent_token, label]
        return words + [self.cfg.sep_token]

    def prepare(self, texts: Sequence[str], labels: Sequence[str]) -> Prepared:
        """Work items for many texts and one label set: the prompt is built once and prefixes every window.
        A text that fits is one window, encoded exactly as gliner encodes it; a longer one is re-cut."""
        labels = list(dict.fromkeys(labels))  # gliner drops repeated labels, keeping the first
        prompt = self.prompt(labels)
        prompt_tokens = len(self._tok.encode(prompt, is_pretokenized=True, add_special_tokens=False).ids)
        budget = self.max_length - self.n_special - prompt_tokens
        if budget < self.cfg.max_width:
            raise InvalidInput(f"the {len(labels)} labels take {prompt_tokens} of the model's {self.max_length} "
                               "tokens, leaving no room for text; send fewer or shorter labels")
        words = [split_words(t) for t in texts]
        first = [Window(t, 0, min(len(w), self.cfg.max_len)) for t, w in enumerate(words) if w]  # no words: none
        encodings = self._encode(prompt, texts, words, first)
        items: list[GlinerItem] = []
        windows: list[Window] = []
        for w, enc in zip(first, encodings, strict=True):
            if w.end_word == len(words[w.text]) and not enc.overflowing:
                windows.append(w)
                items.append(self._item(enc, len(prompt), len(labels), w.end_word))
                continue
            cut = self._windows(texts[w.text], words[w.text], w.text, budget)
            windows += cut
            items += [self._item(e, len(prompt), len(labels), c.end_word - c.first_word)
                      for c, e in zip(cut, self._encode(prompt, texts, words, cut), strict=True)]
        return Prepared(labels, items, windows, words)

    def _encode(self, prompt: list[str], texts: Sequence[str], words: list[list[tuple[int, int]]],
                windows: list[Window]) -> list[Any]:
        seqs = [prompt + [texts[w.text][s:e] for s, e in words[w.text][w.first_word:w.end_word]] for w in windows]
        return self._tok.encode_batch(seqs, is_pretokenized=True) if seqs else []

    def _windows(self, text: str, spans: list[tuple[int, int]], t: int, budget: int) -> list[Window]:
        """Windows of at most `max_len` words and `budget` tokens, overlapping by max_width - 1 words."""
        enc = self._tok.encode([text[s:e] for s, e in spans], is_pretokenized=True, add_special_tokens=False)
        counts = [0] * len(spans)
        for w in enc.word_ids:
            if w is not None:
                counts[w] += 1
        for o in enc.overflowing:  # the text alone can exceed max_length: count the cut-off words too
            for w in o.word_ids:
                if w is not None:
                    counts[w] += 1
        overlap = self.cfg.max_width - 1
        out: list[Window] = []
        start = 0
        while True:
            end, tokens = start, 0
            while end < len(spans) and end - start < self.cfg.max_len and tokens + counts[end] <= budget:
                tokens += counts[end]
                end += 1
            end = max(end, start + 1)  # a single word longer than a window: truncation cuts its tail
            out.append(Window(t, start, end))
            if end >= len(spans):
                return out
            start = max(end - overlap, start + 1)

    def _item(self, enc: Any, prompt_words: int, n_labels: int, n_words: int) -> GlinerItem:
        word_at: dict[int, int] = {}
        for t, w in enumerate(enc.word_ids):
            if w is not None and w >= prompt_words and w not in word_at:
                word_at[w] = t
        label_at = [t for t, i in enumerate(enc.ids) if i == self.ent_id]
        if len(label_at) != n_labels:
            raise InvalidInput(f"a label contains the model's marker token {self.cfg.ent_token}; rename it")
        if not self.cfg.embed_ent_token:
            label_at = [t + 1 for t in label_at]
        return GlinerItem(enc.ids, label_at, [word_at.get(prompt_words + j, -1) for j in range(n_words)])


# ---------------------------------------------------------------------------------------------------
# Heads


def projection_layer(d_in: int, d_out: int, linear: type[nn.Linear] = Linear) -> nn.Sequential:
    """gliner's create_projection_layer: Linear(d_in, 4·d_out)-ReLU-Dropout-Linear(4·d_out, d_out) (dropout is
    the identity at inference; index 2 keeps the checkpoint's `.0` / `.3` names). `linear=nn.Linear` for
    layers whose weights are read directly (folded), which must stay plain (unpacked) tensors."""
    return nn.Sequential(linear(d_in, 4 * d_out), nn.ReLU(), nn.Identity(), linear(4 * d_out, d_out))


class SpanMarkerV0(nn.Module):
    def __init__(self, d: int, max_width: int) -> None:
        super().__init__()
        self.max_width = max_width
        self.project_start = projection_layer(d, d)
        self.project_end = projection_layer(d, d)
        self.out_project = projection_layer(2 * d, d, nn.Linear)  # read by word_terms / label_terms

    def word_terms(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h [N, D] -> (A, B) [N, 4D]: out_project's first layer on the start and end halves (bias in A)."""
        first: nn.Linear = self.out_project[0]  # type: ignore[assignment]
        w = first.weight  # [4D, 2D]
        d = h.shape[-1]
        start = torch.relu(self.project_start(h))
        end = torch.relu(self.project_end(h))
        return (torch.addmm(first.bias, start, w[:, :d].t()), end @ w[:, d:].t())

    def label_terms(self, prompts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts [C, D] -> (W₂ᵀ·P [4D, C], b₂·P [C]): out_project's last layer folded into the labels."""
        last: nn.Linear = self.out_project[3]  # type: ignore[assignment]
        return last.weight.t() @ prompts.t(), prompts @ last.bias  # weight [D, 4D]


class TokenScorer(nn.Module):
    """gliner's Scorer: [W, C, 3] start/end/inside logits from words [W, D] and labels [C, D]."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.proj_token = Linear(d, 2 * d)
        self.proj_label = Linear(d, 2 * d)
        # out_mlp's first layer is read by forward (split in thirds): a plain nn.Linear
        self.out_mlp = nn.Sequential(nn.Linear(3 * d, 4 * d), nn.Identity(), nn.ReLU(), Linear(4 * d, 3))

    def forward(self, words: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = words.shape[-1]
        t0, t1 = self.proj_token(words).split(d, dim=-1)  # [W, D] each
        l0, l1 = self.proj_label(labels).split(d, dim=-1)  # [C, D] each
        first: nn.Linear = self.out_mlp[0]  # type: ignore[assignment]
        w = first.weight  # [4D, 3D]
        per_word = t0 @ w[:, :d].t()  # [W, 4D]
        per_label = torch.addmm(first.bias, l0, w[:, d:2 * d].t())  # [C, 4D]
        pairs = (t1[:, None, :] * l1[None, :, :]) @ w[:, 2 * d:].t()  # [W, C, 4D]
        hidden = torch.relu(pairs + per_word[:, None, :] + per_label[None, :, :])
        return self.out_mlp[3](hidden)  # [W, C, 3]


class _Rnn(nn.Module):
    def __init__(self, d: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d, d // 2, num_layers=layers, bidirectional=True, batch_first=True)


class _SpanRep(nn.Module):
    def __init__(self, d: int, max_width: int) -> None:
        super().__init__()
        self.span_rep_layer = SpanMarkerV0(d, max_width)


class GlinerHead(nn.Module):
    """Everything after the backbone; parameter names are the checkpoint's."""

    def __init__(self, cfg: GlinerConfig, backbone_hidden: int) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.cfg = cfg
        self.projection = Linear(backbone_hidden, d) if backbone_hidden != d else None
        self.rnn = _Rnn(d, cfg.num_rnn_layers) if cfg.num_rnn_layers > 0 else None
        self.scorer = TokenScorer(d) if cfg.span_mode == "token_level" else None
        self.span_rep_layer = _SpanRep(d, cfg.max_width) if self.scorer is None else None
        self.prompt_rep_layer = projection_layer(d, d) if self.scorer is None else None

    def contextualise(self, words: list[torch.Tensor]) -> list[torch.Tensor]:
        """The BiLSTM over each sequence's words ([W_i, D] each), as gliner's packed padded LSTM."""
        if self.rnn is None:
            return words
        out, _ = pad_packed_sequence(self.rnn.lstm(pack_sequence(words, enforce_sorted=False))[0], batch_first=True)
        return [out[i, :len(w)] for i, w in enumerate(words)]

    def span_logits(self, words: list[torch.Tensor], prompts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per sequence [W, max_width, C] logits; spans past the text's end are -inf."""
        assert self.span_rep_layer is not None and self.prompt_rep_layer is not None
        marker = self.span_rep_layer.span_rep_layer
        k = self.cfg.max_width
        sizes = [len(w) for w in words]
        a, b = marker.word_terms(torch.cat(words))  # [N, 4D] each, all sequences' words
        out = []
        offset = 0
        for n, p in zip(sizes, prompts, strict=True):
            q, bias = marker.label_terms(self.prompt_rep_layer(p))  # [4D, C], [C]
            starts = torch.arange(n, device=a.device)[:, None]
            ends = starts + torch.arange(k, device=a.device)[None, :]  # [W, K]
            valid = ends < n
            hidden = a[offset:offset + n][:, None, :] + b[offset + ends.clamp(max=n - 1)]  # [W, K, 4D]
            logits = torch.relu(hidden) @ q + bias  # [W, K, C]
            out.append(logits.masked_fill(~valid[:, :, None], float("-inf")))
            offset += n
        return out


# ---------------------------------------------------------------------------------------------------
# The runnable


@dataclass(frozen=True)
class GlinerBatch:
    packed: PackedBatch
    label_rows: torch.Tensor  # [sum C_i] rows of the packed hidden states
    word_rows: torch.Tensor  # [sum W_i] rows; T (a zero row) for words truncation left without a token
    n_labels: tuple[int, ...]
    n_words: tuple[int, ...]


class GlinerModel(BackboneAndHead):
    """A `Runnable`: backbone + GLiNER head; one output per work item ([W, K, C] span or [W, C, 3] token
    logits, float32 on the host)."""

    head: GlinerHead  # BackboneAndHead's head, with the GLiNER head's own methods

    def __init__(self, info: ModelInfo, cfg: GlinerConfig, backbone: nn.Module, head: GlinerHead,
                 front: GlinerFront, attention: AttentionBackend) -> None:
        super().__init__(info, backbone, head, attention)
        self.cfg = cfg
        self._front = front

    @property
    def front(self) -> GlinerFront:
        return self._front

    def make_batch(self, items: Sequence[GlinerItem]) -> GlinerBatch:
        packed = pack([it.ids for it in items])
        total = packed.input_ids.shape[0]
        label_rows: list[int] = []
        word_rows: list[int] = []
        offset = 0
        for it in items:
            label_rows += [offset + t for t in it.label_at]
            word_rows += [offset + t if t >= 0 else total for t in it.word_at]
            offset += len(it)
        return GlinerBatch(packed, torch.tensor(label_rows), torch.tensor(word_rows),
                           tuple(len(it.label_at) for it in items), tuple(len(it.word_at) for it in items))

    @torch.inference_mode()
    def forward(self, batch: GlinerBatch) -> list[torch.Tensor]:
        device = self.info.device
        _, hidden = self.encode(batch.packed)  # [T, C]
        hidden = torch.cat([hidden, hidden.new_zeros(1, hidden.shape[1])])  # row T: a word with no token
        word_rows = batch.word_rows.to(device)
        labels = hidden[batch.label_rows.to(device)]
        words = hidden[word_rows]
        if self.head.projection is not None:  # gliner projects every token, then gathers (zeros stay zeros)
            labels, words = self.head.projection(labels), self.head.projection(words)
            words[word_rows == hidden.shape[0] - 1] = 0
        prompts = list(labels.split(list(batch.n_labels)))
        per_seq = self.head.contextualise(list(words.split(list(batch.n_words))))
        if self.head.scorer is not None:
            scorer = self.head.scorer
            return [scorer(w, p).float().cpu() for w, p in zip(per_seq, prompts, strict=True)]
        return [x.float().cpu() for x in self.head.span_logits(per_seq, prompts)]

    def split_output(self, out: list[torch.Tensor], batch: GlinerBatch) -> list[torch.Tensor]:
        return out


def _max_length(model_dir: Path, backbone_max: int, requested: int | None) -> int:
    limit = backbone_max
    path = model_dir / "tokenizer_config.json"
    if path.is_file():
        try:
            declared = json.loads(path.read_text()).get("model_max_length")
        except ValueError:
            declared = None
        if isinstance(declared, int) and 0 < declared < 1_000_000:
            limit = min(limit, declared)
    return min(limit, requested) if requested else limit


def backbone_and_head(backbone_cls: Any, bcfg: Any, make_head: Callable[[], H], state: dict[str, torch.Tensor],
                      prefix: str, dtype: torch.dtype, device: torch.device, model_dir: Path) -> tuple[nn.Module, H]:
    """A span model's backbone (the checkpoint's `prefix` keys, through its family's conversion) and head (the
    other keys), built on the meta device, given their weights, moved to `device` and, on CPU, their linear
    weights packed (GLiNER and GLiNER2 alike)."""
    with torch.device("meta"):
        backbone = backbone_cls(bcfg)
        head = make_head()
    backbone_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    head_state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    unused = assign_weights(backbone, convert_state_dict(backbone_state, backbone_cls.conversion), dtype, model_dir)
    unused |= assign_weights(head, head_state, dtype, model_dir)
    if unused:
        log.info("%s: %d checkpoint tensors are not used: %s", model_dir, len(unused), ", ".join(sorted(unused)[:8]))
    backbone.to(device).eval()
    head.to(device).eval()
    if device.type == "cpu":
        pack_linear_weights(backbone, head)
    return backbone, head


def load_gliner(path: str | Path, options: LoadOptions = LoadOptions()) -> GlinerModel:
    """RUNTIMES["gliner"]: a gliner checkpoint directory (gliner_config.json, model.safetensors or
    pytorch_model.bin, tokenizer.json) -> GlinerModel."""
    model_dir = Path(path)
    config_path = model_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ModelLoadError(f"{model_dir}: {CONFIG_FILE} is missing (not a GLiNER checkpoint)")
    try:
        raw = json.loads(config_path.read_text())
    except ValueError as e:
        raise ModelLoadError(f"{config_path}: invalid JSON ({e})") from e
    cfg = GlinerConfig.from_json(raw)
    encoder = raw.get("encoder_config")
    if not isinstance(encoder, dict):
        raise ModelLoadError(f"{config_path}: encoder_config is missing; the backbone's config must be in the "
                             "checkpoint (gliner writes it on save_pretrained)")
    arch, entry = resolve({k: v for k, v in encoder.items() if k != "architectures"})
    if entry.module not in BACKBONE_FAMILIES:
        raise UnsupportedArchitecture(f"GLiNER on a {encoder.get('model_type')!r} backbone is not supported; "
                                      f"supported backbones: deberta-v2 (DeBERTa-v2/v3), modernbert")
    backbone_cls = entry.backbone_class()
    state = read_state_dict(weight_files(model_dir))
    emb = "embeddings.word_embeddings.weight" if entry.module == "deberta_v2" else "embeddings.tok_embeddings.weight"
    if BACKBONE_PREFIX + emb not in state:
        raise ModelLoadError(f"{model_dir}: checkpoint lacks {BACKBONE_PREFIX + emb}")
    bcfg = backbone_cls.config_class.from_hf_config(encoder)
    bcfg = replace(bcfg, vocab_size=state[BACKBONE_PREFIX + emb].shape[0])  # resized for the marker tokens
    device = torch.device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    attention, reason = select_backend(device, dtype, options.attention_backend,
                                       needs_bias=getattr(backbone_cls, "needs_attention_bias", False),
                                       own_attention=getattr(backbone_cls, "own_attention", None))
    tok_path = model_dir / "tokenizer.json"
    if not tok_path.is_file():
        raise ModelLoadError(f"{model_dir}: tokenizer.json is missing (only fast tokenizers are supported)")
    max_length = _max_length(model_dir, bcfg.max_length, options.max_length)
    front = GlinerFront(Tokenizer.from_file(str(tok_path)), cfg, max_length)
    state = {k.replace("token_rep_layer.projection.", "projection."): v for k, v in state.items()}
    backbone, head = backbone_and_head(backbone_cls, bcfg, lambda: GlinerHead(cfg, bcfg.hidden_size), state,
                                       BACKBONE_PREFIX, dtype, device, model_dir)
    info = ModelInfo(architecture=f"{cfg.model_type}/{arch}", family="gliner", task=Task.ZERO_SHOT_NER,
                     hidden_size=cfg.hidden_size, output_dim=cfg.max_width, max_length=max_length, dtype=dtype,
                     device=device, attention_backend=attention.name.value, attention_reason=reason,
                     runtime="gliner")
    log.info("loaded GLiNER %s (%s on %s, %s, %s) attention=%s", model_dir, cfg.span_mode, arch, dtype, device,
             reason)
    return GlinerModel(info, cfg, backbone, head, front, attention)
