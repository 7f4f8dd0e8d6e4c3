"""Reading checkpoint tensors from an HF-format directory (safetensors preferred, mmap'd)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from engine.errors import ModelLoadError

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
