"""Reading checkpoint tensors from an HF-format directory (safetensors preferred, mmap'd)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from engine.attention import AttentionBackend
from engine.batch import PackedBatch
from engine.errors import ModelLoadError
from engine.models.layers import AttentionContext
from engine.runnable import ModelInfo

# Real tokens per forward batch when the settings name no budget.
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 8192, "cuda": 32768}

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"


def weight_files(model_dir: Path) -> list[Path]:
    """The checkpoint files of a model directory, safetensors first; ModelLoadError if none."""
    if (model_dir / SAFETENSORS).is_file():
        return [model_dir / SAFETENSORS]
    if (model_dir / SAFETENSORS_INDEX).is_file():
        try:
            index = json.loads((model_dir / SAFETENSORS_INDEX).read_text())
            return [model_dir / f for f in sorted(set(index["weight_map"].values()))]
        except (ValueError, KeyError) as e:
            raise ModelLoadError(f"{model_dir / SAFETENSORS_INDEX}: corrupt index ({e})") from e
    if (model_dir / TORCH_BIN).is_file():
        return [model_dir / TORCH_BIN]
    raise ModelLoadError(
        f"{model_dir}: no weights found (expected {SAFETENSORS}, {SAFETENSORS_INDEX} or {TORCH_BIN})")


def read_state_dict(files: list[Path]) -> dict[str, torch.Tensor]:
    """All tensors of the given files on CPU. safetensors are memory-mapped; .bin uses torch's mmap."""
    state: dict[str, torch.Tensor] = {}
    for path in files:
        if not path.is_file():
            raise ModelLoadError(f"{path}: weight file is missing")
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt", device="cpu") as f:
                    for key in f.keys():
                        state[key] = f.get_tensor(key)
            else:
                state.update(torch.load(path, map_location="cpu", mmap=True, weights_only=True))
        except ModelLoadError:
            raise
        except Exception as e:  # safetensors/pickle raise a variety of types on truncated files
            raise ModelLoadError(f"{path}: cannot read weights, the file is corrupt or truncated ({e})") from e
    return state


def assign_weights(module: nn.Module, state: dict[str, torch.Tensor], dtype: torch.dtype,
                    where: Path) -> set[str]:
    """Assign checkpoint tensors into a meta-built module (cast to `dtype`), checking names and shapes.
    Parameters that are already materialised (not on meta) are kept as they are. Returns the keys of
    `state` the module does not use."""
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
    return set(state) - set(module.state_dict())


def weights_nbytes(*modules: nn.Module) -> int:
    """Bytes held by the modules' parameters and buffers (what the pool budgets); a tensor two of them share
    (a head tied to the backbone's embeddings) counts once."""
    tensors = {id(t): t for m in modules for t in [*m.parameters(), *m.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


class BackboneAndHead:
    """A `Runnable` whose weights are a backbone and a head module (LoadedModel, GlinerModel, Gliner2Model):
    what they share — construction, the backbone pass over a packed batch, and `nbytes`/`move` (what the
    pool budgets and how it moves the model between its tiers)."""

    backbone: nn.Module
    head: nn.Module
    info: ModelInfo

    def __init__(self, info: ModelInfo, backbone: nn.Module, head: nn.Module, attention: AttentionBackend) -> None:
        self.info = info
        self.backbone = backbone
        self.head = head
        self.attention = attention
        self.max_batch_tokens = DEFAULT_MAX_BATCH_TOKENS.get(info.device.type, 8192)

    def encode(self, batch: PackedBatch) -> tuple[PackedBatch, torch.Tensor]:
        """The batch on the model's device and the backbone's hidden states for it: [T, C]."""
        batch = batch.to(self.info.device)
        return batch, self.backbone(batch, AttentionContext(self.attention, self.attention.prepare(batch)))

    def nbytes(self) -> int:
        """Bytes held by parameters and buffers; a tensor both modules share (a tied decoder) counts once."""
        return weights_nbytes(self.backbone, self.head)

    def move(self, device: torch.device) -> None:
        """Move weights between the device and host RAM (the pool's tiers)."""
        self.backbone.to(device)
        self.head.to(device)
        self.info = replace(self.info, device=device)
