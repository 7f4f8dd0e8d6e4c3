"""Load an HF-format model directory into a LoadedModel.

Steps: config.json -> registry entry -> family config; build modules on the meta device; read the
checkpoint (safetensors mmap'd), rename, fuse QKV, cast; assign into the modules (no second copy);
tokenizer.json with the model's real max length; sentence-transformers metadata for pooling.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.attention import select_backend
from engine.errors import InvalidInput, ModelLoadError, UnsupportedTask
from engine.heads.colbert import MultiVectorHead
from engine.heads.pooling import EmbeddingHead, PoolingMode
from engine.model import LoadedModel
from engine.models.layers import cpu_has_fast_bf16, pack_linear_weights
from engine.registry import YES_NO_RERANK, Task, resolve, task_override
from engine.runnable import ModelInfo
from engine.st_metadata import SentenceTransformersSpec, read_sentence_transformers
from engine.tokenization import PairTemplate, TextTokenizer
from engine.weights import read_state_dict, weight_files

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


@dataclass(frozen=True)
class LoadOptions:
    device: str = "cpu"
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    attention_backend: str | None = None  # None: best available
    max_length: int | None = None  # None: what the model's files say
    pooling: PoolingMode | None = None  # override for models without sentence-transformers metadata
    normalize: bool | None = None
    task: str | None = None  # None: the architecture's default; see registry.TASK_OVERRIDES
    # Sequence classifiers only: one prompt per (query, document) pair, `{query}` then `{document}`
    # (tokenization.PairTemplate), instead of the tokenizer's pair encoding.
    pair_template: str | None = None
    runtime: str = "torch"  # engine.runtimes.RUNTIMES: what builds the runnable from the files


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if name not in DTYPES:
        raise InvalidInput(f"unknown dtype {name!r}; valid: auto, {', '.join(sorted(DTYPES))}")
    dtype = DTYPES[name]
    if dtype is torch.float16 and device.type == "cpu":
        raise InvalidInput("dtype float16 is supported on CUDA only; use bfloat16 or float32 on CPU")
    return dtype


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{model_dir}: config.json is missing")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ModelLoadError(f"{path}: invalid JSON ({e})") from e


def _labels(hf: dict[str, Any]) -> dict[int, str]:
    id2label = hf.get("id2label") or {}
    return {int(k): str(v) for k, v in id2label.items()}


def _num_labels(hf: dict[str, Any]) -> int:
    if hf.get("id2label"):
        return len(hf["id2label"])
    return int(hf.get("num_labels", 2))


def _answer_token(tokenizer: TextTokenizer, word: str, where: Path) -> int:
    token_id = tokenizer.token_id(word)
    if token_id is None:
        raise ModelLoadError(f"{where}: task {YES_NO_RERANK} needs {word!r} as a single token of the tokenizer, "
                             "and tokenizer.json has none")
    return token_id


def _build_head(task: Task, backbone_cls: Any, cfg: Any, hf: dict[str, Any],
                st: SentenceTransformersSpec | None, options: LoadOptions,
                state: dict[str, torch.Tensor], tokenizer: TextTokenizer, where: Path
                ) -> tuple[nn.Module, tuple[PoolingMode, ...], bool, int]:
    """(head, pooling modes, normalize, output dim). Built on the meta device, except ST Dense layers,
    which `read_sentence_transformers` already loaded."""
    if options.task == YES_NO_RERANK:  # a causal LM's "yes" - "no" next-token logit: one label
        if not hasattr(backbone_cls, "yes_no_head"):
            raise UnsupportedTask(f"{where}: task {YES_NO_RERANK} needs a causal LM; {backbone_cls.__name__} "
                                  "has no LM head to score yes/no with")
        yes, no = _answer_token(tokenizer, "yes", where), _answer_token(tokenizer, "no", where)
        return backbone_cls.yes_no_head(cfg, hf, yes, no), (), False, 1
    if task is Task.SEQUENCE_CLASSIFICATION:  # the family knows its task model's head layout
        n = _num_labels(hf)
        return backbone_cls.sequence_head(cfg, n), (), False, n
    if task is Task.TOKEN_CLASSIFICATION:
        n = _num_labels(hf)
        return backbone_cls.token_head(cfg, n), (), False, n
    if task is Task.SPARSE_EMBED:
        if not hasattr(backbone_cls, "mlm_head"):
            raise UnsupportedTask(f"{where}: {backbone_cls.__name__} has no masked-LM head, so no SPLADE vectors")
        head = backbone_cls.mlm_head(cfg)
        return head, (), False, head.vocab_size
    if task is Task.MULTI_VECTOR:  # colbert-ir `linear.weight` [dim, hidden], or PyLate's Dense module
        dense = st.dense if st else []
        proj = state.get("linear.weight")
        if proj is None and not dense:
            raise ModelLoadError(f"{where}: multi_vector needs a ColBERT projection: `linear.weight` in the "
                                 "checkpoint (colbert-ir format) or a sentence-transformers Dense module (PyLate)")
        linear = nn.Linear(proj.shape[1], proj.shape[0], bias=False) if proj is not None else None
        out_dim = dense[-1].linear.out_features if dense else int(proj.shape[0])
        return MultiVectorHead(linear, dense), (), True, out_dim
    default = getattr(backbone_cls, "default_pooling", PoolingMode.MEAN)  # decoders: last token
    modes = [options.pooling] if options.pooling else (st.pooling if st and st.pooling else [default])
    normalize = options.normalize if options.normalize is not None else bool(st and st.normalize)
    dense = st.dense if st else []
    out_dim = dense[-1].linear.out_features if dense else cfg.hidden_size * len(modes)
    head = EmbeddingHead(modes, dense, normalize)
    return head, tuple(modes), normalize, out_dim


def _max_length(model_dir: Path, cfg: Any, st_max: int | None, override: int | None) -> int:
    """The model's real max length: the override, else sentence-transformers' max_seq_length, else
    tokenizer_config's model_max_length; never more than the position table holds."""
    limit = cfg.max_length
    if override is not None:
        if override > limit:
            raise InvalidInput(f"max_length {override} exceeds the model's position limit {limit}")
        return override
    candidates = [st_max]
    tc = model_dir / "tokenizer_config.json"
    if st_max is None and tc.is_file():
        try:
            candidates.append(json.loads(tc.read_text()).get("model_max_length"))
        except ValueError:
            pass
    sane = [int(c) for c in candidates if isinstance(c, (int, float)) and 0 < c < 1_000_000]
    return min([limit, *sane])


def _assign_weights(module: nn.Module, state: dict[str, torch.Tensor], dtype: torch.dtype,
                    where: Path) -> None:
    """Assign checkpoint tensors into a meta-built module (cast to `dtype`), checking names and shapes.
    Parameters that are already materialised (not on meta) are kept as they are."""
    expected = {k: v for k, v in module.state_dict(keep_vars=True).items() if v.is_meta}
    missing = [k for k in expected if k not in state]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ModelLoadError(f"{where}: checkpoint lacks {len(missing)} tensors the model needs: {shown}")
    tensors = {}
    for key, ref in expected.items():
        t = state[key]
        if tuple(t.shape) != tuple(ref.shape):
            raise ModelLoadError(f"{where}: tensor {key} has shape {tuple(t.shape)}, config implies {tuple(ref.shape)}")
        tensors[key] = t.to(dtype) if t.is_floating_point() else t
    module.load_state_dict(tensors, strict=False, assign=True)


def _legacy_norm_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TF-era checkpoints name LayerNorm parameters gamma/beta, in the backbone and in heads alike."""
    return {re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", k)): v
            for k, v in state.items()}


def _tie_weights(head: nn.Module, head_state: dict[str, torch.Tensor], backbone: nn.Module) -> None:
    """Fill head tensors the checkpoint omits from their tied source (`SpladeHead.tied_weights`): another
    head tensor, or a `backbone.` parameter, which is then shared rather than copied."""
    for key, sources in getattr(head, "tied_weights", {}).items():
        if key in head_state:
            continue
        for src in sources:
            if src.startswith("backbone."):
                try:
                    head_state[key] = backbone.get_parameter(src[len("backbone."):])
                    break
                except AttributeError:
                    continue
            if src in head_state:
                head_state[key] = head_state[src]
                break


def _split_state(state: dict[str, torch.Tensor], prefixes: tuple[str, ...], head_keys: set[str]
                 ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Strip the task model's backbone prefix; route head-owned keys (pooler., classifier., lm_head.) to the
    head."""
    backbone: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    prefix = next((p for p in prefixes if p and any(k.startswith(p) for k in state)), "")
    for key, value in state.items():
        name = key[len(prefix):] if prefix and key.startswith(prefix) else key
        (head if name in head_keys else backbone)[name] = value
    return backbone, head


def load_model(path: str | Path, options: LoadOptions = LoadOptions()) -> LoadedModel:
    model_dir = Path(path)
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir}: not a directory")
    hf = read_config(model_dir)
    arch, entry = resolve(hf)
    backbone_cls = entry.backbone_class()
    cfg = backbone_cls.config_class.from_hf_config(hf)
    device = torch.device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    attention, reason = select_backend(device, dtype, options.attention_backend,
                                       needs_bias=getattr(backbone_cls, "needs_attention_bias", False),
                                       own_attention=getattr(backbone_cls, "own_attention", None))

    task = task_override(options.task) if options.task else entry.task
    template = PairTemplate.parse(options.pair_template) if options.pair_template else None
    if template is not None and task is not Task.SEQUENCE_CLASSIFICATION:
        raise InvalidInput(f"pair_template applies to sequence classifiers (rerankers); this model computes "
                           f"{task.value}")
    st = read_sentence_transformers(model_dir) if task in (Task.EMBED, Task.MULTI_VECTOR) else None
    max_length = _max_length(model_dir, cfg, st.max_seq_length if st else None, options.max_length)
    tokenizer = TextTokenizer.from_dir(model_dir, max_length)
    state = _legacy_norm_names(read_state_dict(weight_files(model_dir)))  # mmap'd: nothing copied yet
    with torch.device("meta"):
        backbone = backbone_cls(cfg)
        head, modes, normalize, out_dim = _build_head(task, backbone_cls, cfg, hf, st, options, state, tokenizer,
                                                      model_dir)
    tied = getattr(head, "tied_weights", {})
    tied_keys = set(tied) | {s for srcs in tied.values() for s in srcs}
    backbone_state, head_state = _split_state(state, backbone_cls.backbone_prefixes,
                                              set(head.state_dict()) | tied_keys)
    backbone_state = backbone_cls.convert_state_dict(backbone_state, cfg)
    _assign_weights(backbone, backbone_state, dtype, model_dir)
    _tie_weights(head, head_state, backbone)
    if hasattr(head, "convert_state_dict"):  # e.g. the yes/no head keeps two rows of the LM head
        head_state = head.convert_state_dict(head_state)
    _assign_weights(head, head_state, dtype, model_dir)
    backbone.to(device).eval()
    head.to(device).eval()
    if device.type == "cpu":
        pack_linear_weights(backbone, head)  # oneDNN's blocked layout: faster GEMMs, same bytes

    info = ModelInfo(
        architecture=arch, family=entry.module, task=task, hidden_size=cfg.hidden_size,
        output_dim=out_dim, max_length=max_length, dtype=dtype, device=device,
        attention_backend=attention.name.value, attention_reason=reason, pooling=modes, normalize=normalize,
        labels=_labels(hf) if task in (Task.SEQUENCE_CLASSIFICATION, Task.TOKEN_CLASSIFICATION) else {},
        prompts=st.prompts if st else {}, pair_template=template)
    if options.task == YES_NO_RERANK:
        info = replace(info, labels={0: "yes"})  # the logit yes - no: its sigmoid is P(yes | yes or no)
    log.info("loaded %s (%s, %s, %s) attention=%s", model_dir, arch, dtype, device, reason)
    return LoadedModel(info, backbone, head, tokenizer, attention, getattr(cfg, "position_offset", 0))

