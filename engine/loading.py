"""Load an HF-format model directory into a LoadedModel.

Steps: config.json -> registry entry -> family config; build modules on the meta device; read the
checkpoint (safetensors mmap'd), rename, fuse QKV, cast; assign into the modules (no second copy);
tokenizer.json with the model's real max length; sentence-transformers metadata for pooling.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.attention import select_backend
from engine.errors import ModelConfigError, ModelLoadError
from engine.heads.pooling import PoolingMode
from engine.heads.specs import HEADS, Head, HeadContext, RequestInput, head_named
from engine.model import LoadedModel
from engine.models.conversion import Conversion, Rename, convert_state_dict
from engine.models.layers import cpu_has_fast_bf16, pack_linear_weights
from engine.registry import resolve
from engine.runnable import ModelInfo
from engine.st_metadata import read_sentence_transformers
from engine.tokenization import PairTemplate, TextTokenizer
from engine.weights import assign_weights, read_state_dict, weight_files

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
    head: Head | str | None = None  # None: the architecture's default head (registry.ARCHITECTURES)
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
        raise ModelConfigError(f"unknown dtype {name!r}; valid: auto, {', '.join(sorted(DTYPES))}")
    dtype = DTYPES[name]
    if dtype is torch.float16 and device.type == "cpu":
        raise ModelConfigError("dtype float16 is supported on CUDA only; set bfloat16 or float32 for CPU")
    return dtype


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{model_dir}: config.json is missing")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ModelLoadError(f"{path}: invalid JSON ({e})") from e


def _max_length(model_dir: Path, cfg: Any, st_max: int | None, override: int | None) -> int:
    """The model's real max length: the override, else sentence-transformers' max_seq_length, else
    tokenizer_config's model_max_length; never more than the position table holds."""
    limit = cfg.max_length
    if override is not None:
        if override > limit:
            raise ModelConfigError(f"max_length {override} exceeds the model's position limit {limit}")
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


# TF-era checkpoints name LayerNorm parameters gamma/beta, in the backbone and in heads alike.
LEGACY_NAMES = Conversion(renames=(Rename(r"LayerNorm\.gamma$", "LayerNorm.weight"),
                                   Rename(r"LayerNorm\.beta$", "LayerNorm.bias")))


def _tie_weights(tied: dict[str, tuple[str, ...]], head_state: dict[str, torch.Tensor], backbone: nn.Module) -> None:
    """Fill head tensors the checkpoint omits from their tied source (`SpladeHead.tied_weights`): another
    head tensor, or a `backbone.` parameter, which is then shared rather than copied."""
    for key, sources in tied.items():
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
                                       needs_bias=backbone_cls.needs_attention_bias,
                                       own_attention=backbone_cls.own_attention)

    head = head_named(options.head) if options.head else entry.default_head
    if head not in entry.heads:
        raise ModelConfigError(f"{model_dir}: {arch} checkpoints cannot be loaded with the {head.value} head; "
                               f"they support {', '.join(h.value for h in entry.heads)}")
    spec = HEADS[head]
    if spec.family_builder and head not in backbone_cls.heads:  # the table promises what the family lacks
        raise ModelConfigError(f"{model_dir}: the {entry.module} family has no {head.value} head")
    template = PairTemplate.parse(options.pair_template) if options.pair_template else None
    if template is not None and RequestInput.PAIRS not in spec.inputs:
        raise ModelConfigError(f"pair_template applies to heads that score pairs (rerankers); this model is "
                               f"loaded as {head.value}")
    st = read_sentence_transformers(model_dir) if spec.reads_st_metadata else None
    max_length = _max_length(model_dir, cfg, st.max_seq_length if st else None, options.max_length)
    tokenizer = TextTokenizer.from_dir(model_dir, max_length)
    state = convert_state_dict(read_state_dict(weight_files(model_dir)), LEGACY_NAMES)  # mmap'd: no copy yet
    with torch.device("meta"):
        backbone = backbone_cls(cfg)
        built = spec.build(HeadContext(backbone_cls, cfg, hf, st, options, state, tokenizer, model_dir))
    head_module = built.module
    tied = built.tied_weights
    tied_keys = set(tied) | {s for srcs in tied.values() for s in srcs}
    backbone_state, head_state = _split_state(state, backbone_cls.backbone_prefixes,
                                              set(head_module.state_dict()) | tied_keys)
    backbone_state = convert_state_dict(backbone_state, backbone_cls.conversion)
    unused = assign_weights(backbone, backbone_state, dtype, model_dir)
    _tie_weights(tied, head_state, backbone)
    if built.convert_state is not None:  # e.g. the yes/no head keeps two rows of the LM head
        head_state = built.convert_state(head_state)
    unused_head = assign_weights(head_module, head_state, dtype, model_dir) - tied_keys
    # The backbone's state holds every non-head key: what the head takes (e.g. ColBERT's `linear.weight`)
    # is used, not unused.
    unused = (unused - set(head_module.state_dict())) | unused_head
    if unused:
        shown = sorted(unused)
        log.info("%s: %d checkpoint tensors are not used by the %s head: %s%s", model_dir, len(shown),
                 head.value, ", ".join(shown[:8]), " …" if len(shown) > 8 else "")
    backbone.to(device).eval()
    head_module.to(device).eval()
    if device.type == "cpu":
        pack_linear_weights(backbone, head_module)  # oneDNN's blocked layout: faster GEMMs, same bytes

    info = ModelInfo(
        architecture=arch, family=entry.module, task=spec.task, hidden_size=cfg.hidden_size,
        output_dim=built.output_dim, max_length=max_length, dtype=dtype, device=device,
        attention_backend=attention.name.value, attention_reason=reason, pooling=built.pooling,
        normalize=built.normalize, labels=built.labels, prompts=st.prompts if st else {}, pair_template=template,
        head=head.value)
    log.info("loaded %s (%s, %s head, %s, %s) attention=%s", model_dir, arch, head.value, dtype, device, reason)
    return LoadedModel(info, backbone, head_module, tokenizer, attention, getattr(cfg, "position_offset", 0))
