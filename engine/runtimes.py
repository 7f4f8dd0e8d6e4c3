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
}


def load_runnable(path: Path, options: LoadOptions) -> Runnable:
    target = RUNTIMES.get(options.runtime)
    if target is None:
        raise ModelLoadError(f"unknown runtime {options.runtime!r}; valid: {', '.join(sorted(RUNTIMES))}")
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)(path, options)
