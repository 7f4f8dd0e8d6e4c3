"""Runtimes: how a catalog entry's files become a `Runnable` (a table of strings, imported lazily).

`torch` is our own forward passes (engine.loading); other runtimes host other kinds of models in the same
pool and scheduler (a spaCy pipeline, GLiNER). A catalog entry names its runtime (`runtime:`, default torch).
"""

from __future__ import annotations

import importlib
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
}
# A directory holding this file is a gliner checkpoint whatever its entry says (e.g. one registered with --model).
GLINER_CONFIG = "gliner_config.json"


def load_runnable(path: Path, options: LoadOptions) -> Runnable:
    runtime = "gliner" if options.runtime == "torch" and (path / GLINER_CONFIG).is_file() else options.runtime
    target = RUNTIMES.get(runtime)
    if target is None:
        raise ModelLoadError(f"unknown runtime {runtime!r}; valid: {', '.join(sorted(RUNTIMES))}")
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)(path, options)
