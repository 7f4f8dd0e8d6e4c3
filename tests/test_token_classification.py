"""Token classification, complete: every aggregation strategy equals transformers' token-classification
pipeline on the same random model, and texts 3x the max length are read in overlapping windows (stride) with
nothing dropped, equal to the pipeline with the same stride.

The random model's classifier is scaled and its bias fixed so that every token's argmax wins by a wide margin
(entities are certain: float noise between two implementations cannot flip a tag) and all types occur.
"""

from __future__ import annotations

import itertools
import json
import shutil

import pytest
import torch

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine, default_stride
from engine.pool import PoolConfig
from tools.context import ToolContext
from tools.entities import AGGREGATIONS, extract_entities

pytestmark = pytest.mark.anyio

LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC", 7: "B-MISC", 8: "I-MISC"}
MAX_LENGTH = 64
SHORT = [
    "Angela Merkel met Emmanuel Macron in Paris.",
    "Apple opened an office in Berlin, Germany, in 2019.",
    "Dr. Jürgen Schmidhuber works at IDSIA near Lugano!",
    "The Wall Street Journal reported that Microsoft's CEO visited São Paulo.",
    "nothing here but lowercase words and a café",
    "Barack Obama, Hillary Clinton and Joe Biden debated in Philadelphia on Tuesday night.",
    "Zebras eat grass.",
]


def _long_text(seed: int) -> str:
    """~3x the max length in tokens, with names throughout (the tail included)."""
    names = ["Angela Merkel", "Berlin", "Siemens", "Toyota", "Lisbon", "Marie Curie", "Nvidia", "Oslo"]
    filler = ["the", "committee", "discussed", "budgets", "and", "timelines", "at", "length", "before"]
    g = torch.Generator().manual_seed(seed)
    words = []
    while len(words) < 3 * MAX_LENGTH:
        words.append(names[int(torch.randint(len(names), (1,), generator=g))])
        words.extend(filler[: int(torch.randint(2, 8, (1,), generator=g))])
    return " ".join(words) + " Finally Ada Lovelace arrived in Zurich."


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory, minilm_dir):
    import transformers

    from tests.conftest import tiny_bert_config

    torch.manual_seed(11)
    cfg = transformers.BertConfig(**tiny_bert_config(id2label=LABELS, label2id={v: k for k, v in LABELS.items()}))
    model = transformers.BertForTokenClassification(cfg).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)  # decisive argmaxes
        model.classifier.bias.copy_(torch.tensor([6.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]))
    out = tmp_path_factory.mktemp("certain_ner")
    model.save_pretrained(out)
    for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, out / name)
    tc = json.loads((minilm_dir / "tokenizer_config.json").read_text())
    (out / "tokenizer_config.json").write_text(json.dumps({**tc, "model_max_length": MAX_LENGTH}))
    return out


@pytest.fixture(scope="module")
def reference(ner_dir):
    import transformers

    model = transformers.AutoModelForTokenClassification.from_pretrained(ner_dir).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(ner_dir)
    assert tokenizer.model_max_length == MAX_LENGTH

    def run(texts: list[str], strategy: str) -> list[list[tuple[str, int, int, float]]]:
        pipe = transformers.pipeline("token-classification", model=model, tokenizer=tokenizer,
                                     aggregation_strategy=strategy, stride=default_stride(MAX_LENGTH), device="cpu")
        return [[(e["entity_group"], e["start"], e["end"], float(e["score"])) for e in pipe(t)] for t in texts]

    return run


@pytest.fixture(scope="module")
async def ctx(ner_dir):
    catalog = Catalog()
    catalog.add(CatalogEntry(id="certain-ner", source=f"path:{ner_dir}", task="ner", dtype="float32"))
    engine = Engine(catalog, PoolConfig(budget_bytes=1 << 30, host_budget_bytes=0))
    await engine.start()
    yield ToolContext(engine)
    await engine.shutdown()


def _assert_same(ours, theirs, texts):
    for text, got, want in zip(texts, ours, theirs, strict=True):
        assert [(e.label, e.start, e.end) for e in got] == [w[:3] for w in want], text
        for e, w in zip(got, want):
            assert abs(e.score - w[3]) < 1e-3 and text[e.start:e.end] == e.text


@pytest.mark.parametrize("strategy", AGGREGATIONS)
async def test_aggregation_equals_the_pipeline(ctx, reference, strategy):
    out = await extract_entities(ctx, SHORT, model="certain-ner", aggregation=strategy)
    want = reference(SHORT, strategy)
    assert sum(len(w) for w in want) >= 10  # the model finds entities of several types
    assert len({label for w in want for label, *_ in w}) >= 3
    _assert_same(out.entities, want, SHORT)
    assert out.aggregation == strategy and out.method == "token-classification"


@pytest.mark.parametrize("strategy", ["first", "simple"])
async def test_texts_three_times_the_max_length_are_windowed_with_nothing_dropped(ctx, reference, strategy):
    texts = [_long_text(0), _long_text(1)]
    tokenizer = (await ctx.engine.pool.describe("certain-ner"))[1]
    assert all(len(tokenizer.encode([t])[0].ids) == MAX_LENGTH for t in texts)  # one window would truncate
    assert all(len(w) >= 3 for w in tokenizer.encode_windows(texts, default_stride(MAX_LENGTH)))
    out = await extract_entities(ctx, texts, model="certain-ner", aggregation=strategy)
    for text, ents in zip(texts, out.entities):
        assert max(e.end for e in ents) > 0.9 * len(text)  # entities in the tail
        assert all(a.end <= b.start for a, b in itertools.pairwise(ents))  # overlaps merged
    _assert_same(out.entities, reference(texts, strategy), texts)
    assert out.truncated == [False, False]


async def test_the_default_aggregation_is_first(ctx):
    out = await extract_entities(ctx, SHORT[:1], model="certain-ner")
    assert out.aggregation == "first"


async def test_labels_filter_and_clear_errors(ctx):
    out = await extract_entities(ctx, SHORT, model="certain-ner", labels=["person", "LOC"])
    assert {e.label for ents in out.entities for e in ents} <= {"PER", "LOC"}
    from engine.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"fixed entity types \(LOC, MISC, ORG, PER\); 'price'"):
        await extract_entities(ctx, SHORT, model="certain-ner", labels=["price"])
    with pytest.raises(InvalidInput, match="aggregation must be one of simple, first, average, max"):
        await extract_entities(ctx, SHORT, model="certain-ner", aggregation="mean")
    with pytest.raises(InvalidInput, match="threshold, nested and multi_label apply to zero-shot"):
        await extract_entities(ctx, SHORT, model="certain-ner", threshold=0.3)
