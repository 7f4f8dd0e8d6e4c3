"""spaCy as a runtime: the bundled en_core_web_sm pipeline hosted by the pool, fed by the scheduler, offline."""

from __future__ import annotations

import pytest

from engine.catalog import Catalog
from engine.engine import Engine
from engine.parse import DocParse
from engine.pool import PoolConfig, Tier
from engine.runtimes import RUNTIMES
from tools.context import Defaults, ToolContext
from tools.entities import extract_entities
from tools.labels import ONTONOTES_LABELS

pytestmark = pytest.mark.anyio

TEXTS = ["Angela Merkel met Tim Cook of Apple in Paris on Monday.",
         "Microsoft hired 200 engineers in Seattle last year.",
         "",
         "The weather was nice."]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def engine():
    eng = Engine(Catalog.default(), PoolConfig(budget_bytes=2 << 30, host_budget_bytes=0))
    await eng.start()
    yield eng
    await eng.shutdown()


def _param_bytes(nlp) -> int:
    """Bytes of the pipeline's weight arrays alone: a lower bound for what it holds."""
    total = 0
    for _, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is None:
            continue
        for node in model.walk():
            total += sum(node.get_param(n).nbytes for n in node.param_names if node.has_param(n))
    return total


async def test_parse_through_the_pool_and_scheduler(engine):
    parses = await engine.parse("en_core_web_sm", TEXTS)
    assert len(parses) == len(TEXTS) and all(isinstance(p, DocParse) for p in parses)
    first = parses[0]
    ents = {(e.text, e.label) for e in first.entities}
    assert {("Angela Merkel", "PERSON"), ("Tim Cook", "PERSON"), ("Apple", "ORG"), ("Paris", "GPE")} <= ents
    for text, p in zip(TEXTS, parses):
        for t in p.tokens:
            assert text[t.start:t.end] == t.text and 0 <= t.head < len(p.tokens)
        for s, e in p.sentences + p.noun_chunks:
            assert 0 <= s < e <= len(text)
        assert all(text[e.start:e.end] == e.text and e.score == 1.0 for e in p.entities)
    assert parses[2].tokens == () and parses[2].entities == ()
    assert sum(1 for t in first.tokens if t.dep == "ROOT") == len(first.sentences) == 1


async def test_the_pool_budgets_the_pipeline_honestly(engine):
    await engine.parse("en_core_web_sm", ["warm"])
    pool = engine.pool
    assert pool.tier("en_core_web_sm") is Tier.DEVICE
    slot_bytes = next(s["bytes"] for s in pool.status() if s["id"] == "en_core_web_sm")
    pipeline = pool.model_info("en_core_web_sm")
    weights = _param_bytes(pipeline.nlp)
    assert weights > 1 << 20  # a few MiB of CNN weights
    assert weights <= slot_bytes < 20 * weights  # weights + vocabulary + string store + tables
    info = await engine.info("en_core_web_sm")
    assert info.runtime == "spacy" and sorted(info.labels.values()) == sorted(ONTONOTES_LABELS)
    assert RUNTIMES["spacy"] == "engine.spacy_runtime:load_spacy"


async def test_extract_entities_with_no_arguments_uses_spacy(engine):
    ctx = ToolContext(engine, Defaults())  # the shipped defaults: en_core_web_sm
    out = await extract_entities(ctx, TEXTS[:2])
    assert out.model == "en_core_web_sm" and out.method == "spacy"
    labels = {e.label for ents in out.entities for e in ents}
    assert {"PERSON", "ORG", "GPE"} <= labels
    people = await extract_entities(ctx, TEXTS[0], labels=["person", "country"])
    assert {(e.text, e.label) for e in people.entities[0]} == {("Angela Merkel", "PERSON"), ("Tim Cook", "PERSON"),
                                                              ("Paris", "GPE")}


def _observations(histogram) -> float:
    return next(s.value for m in histogram.collect() for s in m.samples if s.name.endswith("_count"))


async def test_batched_texts_share_one_pipe_call(engine):
    batches = engine.metrics.batch_size.labels(model="en_core_web_sm")
    before_batches, before_items = _observations(batches), batches._sum.get()
    await engine.parse("en_core_web_sm", [f"Sentence {i} about Google in London." for i in range(16)])
    assert _observations(batches) - before_batches == 1  # one nlp.pipe call for the 16 texts
    assert batches._sum.get() - before_items == 16
