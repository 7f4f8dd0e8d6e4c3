"""The engine facade: catalog + pool + scheduler behind task-level async calls.

This is the one way into the engine for tools/: it validates inputs, applies catalog prompts, tokenises
off the event loop, and submits to the scheduler. It knows nothing of MCP or HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import torch

from engine.catalog import Catalog, CatalogEntry
from engine.errors import InvalidInput, UnsupportedTask
from engine.heads.pooling import finish_embeddings
from engine.heads.splade import top_terms
from engine.metrics import EngineMetrics
from engine.model import (
    EmbeddingOutput,
    ModelInfo,
    MultiVectorOutput,
    SparseOutput,
    TokenLogits,
    require_no_template,
)
from engine.gliner2_decoding import TextResult, decode
from engine.models.gliner import GlinerFront
from engine.models.gliner2_prompt import Gliner2Front, Gliner2Schema
from engine.parse import DocParse
from engine.pool import ModelPool, PoolConfig
from engine.registry import Task
from engine.scheduler import Scheduler, SchedulerConfig
from engine.span_decoding import (
    ZeroShotEntity,
    greedy,
    merge_windows,
    span_candidates,
    to_entities,
    token_candidates,
)
from engine.tokenization import Encoded, TextTokenizer, validate_texts

R = TypeVar("R")
INLINE_TOKENIZE_CHARS = 4096


@dataclass(frozen=True)
class ZeroShotOutput:
    entities: list[list[ZeroShotEntity]]  # per text, by start
    windows: list[int]  # per text, how many word windows it ran as (0: no words)


@dataclass(frozen=True)
class ClassifyOutput:
    logits: torch.Tensor  # [N, num_labels] float32
    token_counts: list[int]
    truncated: list[bool]


@dataclass(frozen=True)
class TokenWindow:
    """Token logits of one window of a text (engine.tokenization.TextTokenizer.encode_windows)."""

    logits: torch.Tensor  # [n_tokens, num_labels] float32
    encoded: Encoded  # offsets into the whole text
    continues: list[bool]  # per token: a continuation piece of the previous token's word


def default_stride(max_length: int) -> int:
    """Tokens shared by consecutive windows: a quarter of the window (an entity cut at one window's edge is
    whole in the next)."""
    return max_length // 4


class Engine:
    def __init__(self, catalog: Catalog, pool: PoolConfig = PoolConfig(),
                 scheduler: SchedulerConfig = SchedulerConfig()) -> None:
        self.catalog = catalog
        self.metrics = EngineMetrics()
        self.pool = ModelPool(catalog, pool, self.metrics)
        self.scheduler = Scheduler(self.pool, scheduler, self.metrics)

    async def start(self, preload: Sequence[str] = (), serving: bool = False) -> None:
        """Start the device loop and load `preload`. `serving`: this event-loop thread only serves requests,
        so it is kept at one intra-op thread: the small tensor work it does on results (stacking,
        normalising, scoring) must never start a second OpenMP team beside the device thread's (see
        `ModelPool.on_device`). The setting is per thread; the device thread keeps its threads."""
        if serving:
            torch.set_num_threads(1)
        self.scheduler.start()
        for model_id in preload:
            await self.pool.describe(model_id)

    async def shutdown(self) -> None:
        await self.scheduler.shutdown()
        self.pool.close()

    def entry(self, model_id: str) -> CatalogEntry:
        return self.catalog.get(model_id)

    async def info(self, model_id: str) -> ModelInfo:
        return (await self.pool.describe(model_id))[0]

    async def _prepare(self, model_id: str, task: Task) -> tuple[ModelInfo, TextTokenizer]:
        info, tokenizer = await self.pool.describe(model_id)
        if info.task is not task:
            raise UnsupportedTask(f"model {model_id} computes {info.task.value}, not {task.value}; "
                                  f"pick a model whose task fits (see list_models)")
        return info, tokenizer

    async def _tokenize(self, model_id: str, fn: Callable[[list], R], items: list) -> R:
        """Small inputs are tokenised inline (tens of microseconds, less than a thread hop); larger ones on
        a worker thread so the event loop, and the device loop it feeds, never wait on them."""
        started = time.perf_counter()
        chars = sum(len(x) if isinstance(x, str) else len(x[0]) + len(x[1]) for x in items)
        encoded = fn(items) if chars <= INLINE_TOKENIZE_CHARS else await asyncio.to_thread(fn, items)
        self.metrics.phase_seconds.labels(model=model_id, phase="tokenize").observe(
            time.perf_counter() - started)
        return encoded

    def _with_prompt(self, model_id: str, kind: str | None, texts: list[str]) -> list[str]:
        entry = self.entry(model_id)
        prompt = entry.query_prompt if kind == "query" else entry.document_prompt if kind == "document" else ""
        return [prompt + t for t in texts] if prompt else texts

    @staticmethod
    def _check_kind(kind: str | None) -> None:
        if kind not in (None, "query", "document"):
            raise InvalidInput(f"kind must be 'query' or 'document', got {kind!r}")

    async def _compute(self, model_id: str, task: Task, texts: list[str], kind: str | None = None,
                       offsets: bool = False) -> tuple[ModelInfo, TextTokenizer, list[Encoded], list[torch.Tensor]]:
        """The one path for single-text tasks: admit, check the task, apply the catalog prompt, tokenise,
        submit. Returns the model's info and tokenizer, the encodings and the per-input outputs."""
        async with self.scheduler.admitted(model_id) as model_id:
            info, tokenizer = await self._prepare(model_id, task)
            texts = self._with_prompt(model_id, kind, texts)
            encoded = await self._tokenize(model_id, partial(tokenizer.encode, offsets=offsets), texts)
            rows = await self.scheduler.submit(model_id, encoded)
        return info, tokenizer, encoded, rows

    async def embed(self, model_id: str, texts: Sequence[str], kind: str | None = None,
                    normalize: bool | None = None, dimensions: int | None = None) -> EmbeddingOutput:
        texts = validate_texts(texts)
        self._check_kind(kind)
        info, _, encoded, rows = await self._compute(model_id, Task.EMBED, texts, kind)
        vectors = finish_embeddings(torch.stack(rows), info.normalize if normalize is None else normalize,
                                    dimensions)
        return EmbeddingOutput(vectors, [len(e) for e in encoded], [e.truncated for e in encoded])

    async def classify(self, model_id: str, texts: Sequence[str],
                       pairs: Sequence[str] | None = None) -> ClassifyOutput:
        """Sequence-classification logits for texts, or for (text, pair) pairs (cross-encoders). A model with
        a pair template (catalog `pair_template`, e.g. Qwen3-Reranker) gets each pair as one prompt."""
        texts = validate_texts(texts)
        if pairs is not None:
            pairs = validate_texts(pairs, "pairs")
            if len(pairs) != len(texts):
                raise InvalidInput(f"got {len(texts)} texts but {len(pairs)} pairs")
        async with self.scheduler.admitted(model_id) as model_id:
            info, tokenizer = await self._prepare(model_id, Task.SEQUENCE_CLASSIFICATION)
            template = info.pair_template
            if pairs is not None:
                encode = (partial(tokenizer.encode_template, template) if template
                          else partial(tokenizer.encode_pairs, offsets=False))
                encoded = await self._tokenize(model_id, encode, list(zip(texts, pairs, strict=True)))
            else:
                require_no_template(template)
                encoded = await self._tokenize(model_id, partial(tokenizer.encode, offsets=False), texts)
            rows = await self.scheduler.submit(model_id, encoded)
        return ClassifyOutput(torch.stack(rows), [len(e) for e in encoded], [e.truncated for e in encoded])

    async def token_logits(self, model_id: str, texts: Sequence[str]) -> list[TokenLogits]:
        texts = validate_texts(texts)
        _, _, encoded, rows = await self._compute(model_id, Task.TOKEN_CLASSIFICATION, texts, offsets=True)
        return [TokenLogits(r, e) for r, e in zip(rows, encoded, strict=True)]

    async def sparse_embed(self, model_id: str, texts: Sequence[str], top_k: int | None = 128
                           ) -> SparseOutput:
        """SPLADE vectors: per text its `top_k` heaviest vocabulary terms (all non-zero ones when None).
        Across the scheduler each sequence's output is its sparse [V] row (non-zeros only)."""
        texts = validate_texts(texts)
        if top_k is not None and top_k < 1:
            raise InvalidInput(f"top_k must be at least 1, got {top_k}")
        _, tokenizer, encoded, rows = await self._compute(model_id, Task.SPARSE_EMBED, texts)
        return SparseOutput([top_terms(row, top_k, tokenizer.id_to_token) for row in rows],
                            [len(e) for e in encoded], [e.truncated for e in encoded])

    async def multi_vector(self, model_id: str, texts: Sequence[str], kind: str | None = None
                           ) -> MultiVectorOutput:
        """ColBERT multi-vectors: per text [n_tokens, dim] L2-normalised rows (score with heads.colbert.maxsim)."""
        texts = validate_texts(texts)
        self._check_kind(kind)
        _, _, encoded, rows = await self._compute(model_id, Task.MULTI_VECTOR, texts, kind)
        return MultiVectorOutput(rows, [len(e) for e in encoded], [e.truncated for e in encoded])

    async def parse(self, model_id: str, texts: Sequence[str]) -> list[DocParse]:
        """Linguistic parses from a pipeline model (Task.PARSE: spaCy): one `DocParse` per text, in order.
        The texts go through the scheduler like tokenised work (the pool hosts the pipeline)."""
        texts = validate_texts(texts)
        async with self.scheduler.admitted(model_id) as model_id:
            _, front = await self._prepare(model_id, Task.PARSE)
            return await self.scheduler.submit(model_id, front.encode(texts))

    async def token_windows(self, model_id: str, texts: Sequence[str], stride: int | None = None
                            ) -> list[list[TokenWindow]]:
        """Token-classification logits per text, over overlapping windows of the model's max length (no tail
        is dropped); `stride` tokens shared between windows (default: `default_stride`)."""
        texts = validate_texts(texts)
        async with self.scheduler.admitted(model_id) as model_id:
            _, tokenizer = await self._prepare(model_id, Task.TOKEN_CLASSIFICATION)
            stride = default_stride(tokenizer.max_length) if stride is None else stride
            windows: list[list[Encoded]] = await self._tokenize(
                model_id, partial(tokenizer.encode_windows, stride=stride), texts)  # type: ignore[arg-type]
            rows = await self.scheduler.submit(model_id, [w for ws in windows for w in ws])
        out, i = [], 0
        for text, ws in zip(texts, windows, strict=True):
            out.append([TokenWindow(rows[i + j], w, tokenizer.word_continuations(text, w)) for j, w in enumerate(ws)])
            i += len(ws)
        return out

    async def zero_shot_entities(self, model_id: str, texts: Sequence[str], labels: Sequence[str],
                                 threshold: float = 0.5, flat: bool = True, multi_label: bool = False
                                 ) -> ZeroShotOutput:
        """Entities of the given labels (GLiNER): per text, spans with probability above `threshold`, greedily
        decoded (`flat`: no overlaps; else nested spans allowed; `multi_label`: one span may carry several
        labels). Long texts run as overlapping word windows, merged (engine.span_decoding)."""
        texts = validate_texts(texts)
        labels = validate_texts(labels, "labels")
        if any(not x.strip() for x in labels):
            raise InvalidInput("labels must be non-empty strings, e.g. [\"person\", \"company\"]")
        if not 0.0 <= threshold < 1.0:
            raise InvalidInput(f"threshold must be in [0, 1), got {threshold}")
        async with self.scheduler.admitted(model_id) as model_id:
            _, front = await self._prepare(model_id, Task.ZERO_SHOT_NER)
            assert isinstance(front, GlinerFront)
            prepared = await self._tokenize(model_id, partial(front.prepare, labels=labels), list(texts))
            outputs = await self.scheduler.submit(model_id, prepared.items)
        candidates = token_candidates if front.cfg.span_mode == "token_level" else span_candidates
        per_text: list[list[tuple[int, list]]] = [[] for _ in texts]
        for window, logits in zip(prepared.windows, outputs, strict=True):
            per_text[window.text].append((window.first_word, candidates(logits, threshold)))
        entities = [to_entities(text, words, greedy(merge_windows(found), flat, multi_label), prepared.labels)
                    for text, words, found in zip(texts, prepared.words, per_text, strict=True)]
        windows = [0] * len(texts)
        for window in prepared.windows:
            windows[window.text] += 1
        return ZeroShotOutput(entities, windows)

    async def schema_extract(self, model_id: str, texts: Sequence[str], schema: Gliner2Schema,
                             threshold: float = 0.5) -> list[TextResult]:
        """A schema's entities, relations, classifications and structures per text (GLiNER2): every text with
        the one schema in packed batches, long texts as overlapping word windows (engine.gliner2_decoding)."""
        texts = validate_texts(texts)
        if not 0.0 <= threshold <= 1.0:
            raise InvalidInput(f"threshold must be in [0, 1], got {threshold}")
        async with self.scheduler.admitted(model_id) as model_id:
            _, front = await self._prepare(model_id, Task.SCHEMA_EXTRACTION)
            assert isinstance(front, Gliner2Front)
            prepared = await self._tokenize(model_id, partial(front.prepare, schema=schema), list(texts))
            outputs = await self.scheduler.submit(model_id, prepared.items)
        return decode(prepared, outputs, texts, threshold)
