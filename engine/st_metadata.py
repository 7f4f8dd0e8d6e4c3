"""sentence-transformers metadata: which pooling, Dense layers and normalisation a model card promises.

Reads `modules.json`, `<pooling dir>/config.json`, `<dense dir>/config.json` + weights, and
`sentence_bert_config.json` (max_seq_length). Only reads files; never imports sentence-transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelLoadError, UnsupportedArchitecture
from engine.heads.pooling import DenseLayer, PoolingMode
from engine.weights import read_state_dict, weight_files

# sentence-transformers pooling flags -> our modes, in the order ST concatenates them.
_POOLING_FLAGS = [
    ("pooling_mode_cls_token", PoolingMode.CLS),
    ("pooling_mode_max_tokens", PoolingMode.MAX),
    ("pooling_mode_mean_tokens", PoolingMode.MEAN),
    ("pooling_mode_mean_sqrt_len_tokens", PoolingMode.MEAN_SQRT_LEN),
    ("pooling_mode_lasttoken", PoolingMode.LAST_TOKEN),
]

_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
}


@dataclass
class SentenceTransformersSpec:
    pooling: list[PoolingMode] | None = None
    dense: list[DenseLayer] = field(default_factory=list)
    normalize: bool = False
    max_seq_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: cannot read ({e})") from e


def _pooling_modes(cfg: dict[str, Any], path: Path) -> list[PoolingMode]:
    if cfg.get("pooling_mode_weightedmean_tokens"):
        raise UnsupportedArchitecture(f"{path}: field pooling_mode_weightedmean_tokens is not supported")
    if "pooling_mode" in cfg and isinstance(cfg["pooling_mode"], str):  # newer single-string form
        name = {"lasttoken": "last_token", "mean_sqrt_len_tokens": "mean_sqrt_len"}.get(
            cfg["pooling_mode"], cfg["pooling_mode"])
        return [PoolingMode(name)]
    modes = [mode for flag, mode in _POOLING_FLAGS if cfg.get(flag)]
    if not modes:
        raise ModelLoadError(f"{path}: no pooling mode is enabled")
    return modes


def _dense_layer(module_dir: Path) -> DenseLayer:
    cfg = _read_json(module_dir / "config.json")
    act = _ACTIVATIONS.get(cfg.get("activation_function", "torch.nn.modules.linear.Identity"))
    if act is None:
        raise UnsupportedArchitecture(
            f"{module_dir}/config.json: field activation_function={cfg.get('activation_function')!r} "
            f"is not supported; supported: {sorted(_ACTIVATIONS)}")
    layer = DenseLayer(cfg["in_features"], cfg["out_features"], cfg.get("bias", True), act)
    state = read_state_dict(weight_files(module_dir))
    layer.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return layer


def read_sentence_transformers(model_dir: Path) -> SentenceTransformersSpec | None:
    """The ST pipeline of a model directory, or None when it has no modules.json."""
    modules_path = model_dir / "modules.json"
    if not modules_path.is_file():
        return None
    spec = SentenceTransformersSpec()
    for module in _read_json(modules_path):
        kind = module.get("type", "").rsplit(".", 1)[-1]
        module_dir = model_dir / module.get("path", "")
        if kind == "Pooling":
            spec.pooling = _pooling_modes(_read_json(module_dir / "config.json"), module_dir / "config.json")
        elif kind == "Dense":
            spec.dense.append(_dense_layer(module_dir))
        elif kind == "Normalize":
            spec.normalize = True
        elif kind not in ("Transformer", "Router"):
            raise UnsupportedArchitecture(f"{modules_path}: sentence-transformers module {kind!r} is not supported")
    st_cfg = model_dir / "sentence_bert_config.json"
    if st_cfg.is_file():
        spec.max_seq_length = _read_json(st_cfg).get("max_seq_length")
    cst = model_dir / "config_sentence_transformers.json"
    if cst.is_file():
        spec.prompts = dict(_read_json(cst).get("prompts") or {})
    return spec
