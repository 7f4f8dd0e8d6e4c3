"""Runtimes: how a catalog entry's files become a `Runnable` (a table of strings, imported lazily).

`torch` is our own forward passes (engine.loading); other runtimes host other kinds of models in the same
pool and scheduler (a spaCy pipeline, GLiNER). A catalog entry names its runtime (`runtime:`, default torch).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ModelLoadError

if TYPE_CHECKING:
    from engine.loading import LoadOptions
    from engine.runnable import Runnable

# runtime name -> "module:function" taking (model dir, LoadOptions) and returning a Runnable
RUNTIMES: dict[str, str] = {
    "torch": "engine.loading:load_model",
    "spacy": "engine.spacy_runtime:load_spacy",
    "gliner": "engine.models.gliner:load_gliner",  # zero-shot NER from a gliner checkpoint
    "gliner2": "engine.models.gliner2:load_gliner2",  # schema extraction from a gliner2 (span) checkpoint
}


def is_gliner2_dir(path: Path) -> bool:
    """A gliner2 checkpoint: config.json of model_type `extractor` beside encoder_config/config.json."""
    if not (path / "encoder_config" / "config.json").is_file():
        return False
    try:
        return json.loads((path / "config.json").read_text()).get("model_type") == "extractor"
    except (OSError, ValueError, AttributeError):
        return False


def runtime_of_directory(path: Path, runtime: str = "torch") -> str:
    """The runtime a directory needs when its entry says `torch` (e.g. one registered with --model): a gliner
    checkpoint (gliner_config.json) or a gliner2 one (config.json of model_type `extractor` beside
    encoder_config/)."""
    if runtime != "torch":
        return runtime
    from engine.catalog import kind_of_directory  # the one table of what a directory holds (catalog imports us)

    return kind_of_directory(path).runtime


def load_runnable(path: Path, options: LoadOptions) -> Runnable:
    runtime = runtime_of_directory(path, options.runtime)
    target = RUNTIMES.get(runtime)
    if target is None:
        raise ModelLoadError(f"unknown runtime {runtime!r}; valid: {', '.join(sorted(RUNTIMES))}")
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)(path, options)
