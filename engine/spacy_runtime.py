"""spaCy pipelines as a runtime: a `Runnable` the pool hosts and the scheduler feeds like our torch models.

A pipeline directory (what `spacy.load` reads: `config.cfg`, `meta.json`, component folders) becomes a
`SpacyPipeline`. Work items are the texts themselves (`SpacyText`, whose `len()` estimates spaCy tokens
for the scheduler's token budget); a batch runs through `nlp.pipe` on the device thread; each text's output
is an `engine.parse.DocParse` (tokens, sentences, entities, noun chunks), so nothing spaCy leaves the engine.

spaCy's small English pipelines are CNNs that compute on the CPU (GPU needs cupy, which we do not install):
`move` is a no-op and the model stays on the CPU whatever the pool's device is.

Entity scores: spaCy's NER is a greedy transition-based parser; its decisions carry no probability. Each
entity gets `score = 1.0` ("the pipeline chose this span"), not a calibrated confidence.
"""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import ModelLoadError
from engine.parse import DocParse, ParsedEntity, ParsedToken
from engine.registry import Task
from engine.runnable import ModelInfo

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # English averages ~4-5 characters per spaCy token (punctuation is a token)
SPACY_ENTITY_SCORE = 1.0
DEFAULT_MAX_BATCH_TOKENS = 8192  # spaCy tokens per nlp.pipe call


@dataclass(frozen=True)
class SpacyText:
    """One text for a spaCy pipeline; `len()` is its cost against the scheduler's token budget."""

    text: str

    def __len__(self) -> int:
        return max(1, len(self.text) // CHARS_PER_TOKEN)


class SpacyFront:
    """Turns texts into work items (needs no weights, so the pool keeps it after a drop)."""

    def __init__(self, max_chars: int) -> None:
        self.max_length = max_chars  # spaCy's own limit is in characters (nlp.max_length)

    def encode(self, texts: Sequence[str]) -> list[SpacyText]:
        return [SpacyText(t) for t in texts]


def to_parse(doc: Any) -> DocParse:
    """A spaCy Doc as plain data (character offsets; token heads as indices into `tokens`)."""
    tokens = tuple(ParsedToken(start=t.idx, end=t.idx + len(t.text), text=t.text, lemma=t.lemma_, pos=t.pos_,
                               dep=t.dep_, head=t.head.i) for t in doc)
    sentences = tuple((s.start_char, s.end_char) for s in doc.sents) if doc.has_annotation("SENT_START") else ()
    entities = tuple(ParsedEntity(start=e.start_char, end=e.end_char, text=e.text, label=e.label_,
                                  score=SPACY_ENTITY_SCORE) for e in doc.ents)
    chunks = tuple((c.start_char, c.end_char) for c in doc.noun_chunks) if doc.has_annotation("DEP") else ()
    return DocParse(tokens=tokens, sentences=sentences, entities=entities, noun_chunks=chunks)


class SpacyPipeline:
    """A loaded spaCy pipeline behind the `engine.runnable.Runnable` contract (task PARSE)."""

    def __init__(self, nlp: Any, nbytes: int, name: str) -> None:
        self.nlp = nlp
        self._nbytes = nbytes
        labels = nlp.get_pipe("ner").labels if nlp.has_pipe("ner") else ()
        self.info = ModelInfo(
            architecture=name, family="spacy", task=Task.PARSE, hidden_size=0, output_dim=len(labels),
            max_length=nlp.max_length, dtype=torch.float32, device=torch.device("cpu"),
            labels=dict(enumerate(labels)), runtime="spacy")
        self.max_batch_tokens = DEFAULT_MAX_BATCH_TOKENS
        self._front = SpacyFront(nlp.max_length)

    @property
    def front(self) -> SpacyFront:
        return self._front

    def nbytes(self) -> int:
        """Python-heap bytes the pipeline holds (weights, vocabulary, string store, lookup tables), measured
        with tracemalloc while it loaded."""
        return self._nbytes

    def move(self, device: torch.device) -> None:
        """No-op: the pipeline computes on the CPU (see the module docstring)."""

    def make_batch(self, items: Sequence[SpacyText]) -> list[str]:
        return [item.text for item in items]

    def forward(self, batch: list[str]) -> list[Any]:
        return list(self.nlp.pipe(batch, batch_size=max(1, len(batch))))

    def split_output(self, out: list[Any], batch: list[str]) -> list[DocParse]:
        return [to_parse(doc) for doc in out]


def pipeline_dir(package_dir: Path) -> Path:
    """The directory `spacy.load` reads inside an installed pipeline package (`<pkg>/<name>-<version>/`), or
    the directory itself when it holds `config.cfg`."""
    if (package_dir / "config.cfg").is_file():
        return package_dir
    found = sorted(p.parent for p in package_dir.glob("*/config.cfg"))
    if not found:
        raise ModelLoadError(f"{package_dir}: no spaCy pipeline (config.cfg) in it or its subdirectories")
    return found[-1]


def load_spacy(path: Path, options: Any) -> SpacyPipeline:
    """RUNTIMES["spacy"]: a pipeline directory -> SpacyPipeline. Memory is measured as the Python-heap bytes
    still held after `spacy.load` (numpy arrays and spaCy's C structures allocate through it)."""
    try:
        import spacy
    except ImportError as e:
        raise ModelLoadError("spaCy is not installed (pip install 'spacy>=3.8,<3.9')") from e
    where = pipeline_dir(Path(path))
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        try:
            nlp = spacy.load(where)
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"{where}: cannot load spaCy pipeline ({e})") from e
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        if started_tracing:
            tracemalloc.stop()
    meta = nlp.meta
    name = f"spacy:{meta.get('lang', '?')}_{meta.get('name', '?')}-{meta.get('version', '?')}"
    log.info("loaded spaCy pipeline %s (%s; %.1f MiB)", where, ", ".join(nlp.pipe_names), held / 2**20)
    return SpacyPipeline(nlp, max(held, 1), name)
