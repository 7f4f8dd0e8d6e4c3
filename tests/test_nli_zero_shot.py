"""NLI zero-shot classification equals transformers' zero-shot-classification pipeline on the same random
model, single- and multi-label, with the entailment index read from id2label (two label orders); rerank
with an NLI head scores P(entailment)."""

from __future__ import annotations

import shutil

import pytest
import torch

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import InvalidInput
from engine.pool import PoolConfig
from tools.classify import classify
from tools.context import ToolContext
from tools.rerank import rerank

pytestmark = pytest.mark.anyio

ORDERS = {"mnli": {0: "contradiction", 1: "neutral", 2: "entailment"},
          "entail-first": {0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"}}
TEXTS = ["The battery of my laptop died after a week.", "We won the football match 3-1!", "Refund please."]
LABELS = ["electronics", "sports", "billing", "customer complaint about a broken product"]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def nli_dirs(tmp_path_factory, minilm_dir):
    import transformers

    from tests.conftest import tiny_bert_config

    dirs = {}
    for name, id2label in ORDERS.items():
        torch.manual_seed(3)
        cfg = transformers.BertConfig(**tiny_bert_config(id2label=id2label,
                                                         label2id={v: k for k, v in id2label.items()}))
        model = transformers.BertForSequenceClassification(cfg).eval()
        with torch.no_grad():
            model.classifier.weight.mul_(8.0)  # spread the scores
        out = tmp_path_factory.mktemp(f"nli_{name}")
        model.save_pretrained(out)
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            shutil.copy(minilm_dir / f, out / f)
        dirs[name] = out
    return dirs


@pytest.fixture(scope="module")
async def ctx(nli_dirs, minilm_dir):
    catalog = Catalog()
    for name, d in nli_dirs.items():
        catalog.add(CatalogEntry(id=f"nli-{name}", source=f"path:{d}", task="classify", dtype="float32"))
    engine = Engine(catalog, PoolConfig(budget_bytes=1 << 30, host_budget_bytes=0))
    await engine.start()
    yield ToolContext(engine)
    await engine.shutdown()


def _reference(model_dir, texts, labels, multi_label, template="This example is {}."):
    import transformers

    pipe = transformers.pipeline("zero-shot-classification", model=str(model_dir), device="cpu")
    out = pipe(texts, candidate_labels=labels, multi_label=multi_label, hypothesis_template=template)
    return [dict(zip(o["labels"], o["scores"], strict=True)) for o in out]


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("multi_label", [False, True])
async def test_zero_shot_equals_the_pipeline(ctx, nli_dirs, order, multi_label):
    out = await classify(ctx, TEXTS, labels=LABELS, model=f"nli-{order}", top_k=len(LABELS), multi_label=multi_label)
    want = _reference(nli_dirs[order], TEXTS, LABELS, multi_label)
    assert out.method == "nli-zero-shot"
    for got, ref in zip(out.results, want, strict=True):
        assert {r.label: r.score for r in got} == pytest.approx(ref, abs=2e-4)
        assert [r.score for r in got] == sorted((r.score for r in got), reverse=True)
        if not multi_label:
            assert len({round(v, 3) for v in ref.values()}) == len(LABELS)  # distinct: the ranking is tested
            assert sum(r.score for r in got) == pytest.approx(1.0, abs=1e-3)


async def test_template_and_a_single_label(ctx, nli_dirs):
    template = "The customer writes about {}."
    out = await classify(ctx, TEXTS, labels=["money"], model="nli-mnli", hypothesis_template=template)
    want = _reference(nli_dirs["mnli"], TEXTS, ["money"], False, template)  # one label: multi-label scoring
    assert [r[0].score for r in out.results] == pytest.approx([w["money"] for w in want], abs=2e-4)
    with pytest.raises(InvalidInput, match="must contain '{}'"):
        await classify(ctx, TEXTS, labels=["x"], model="nli-mnli", hypothesis_template="no slot")
    with pytest.raises(InvalidInput, match="NLI model: it classifies zero-shot into the labels you give"):
        await classify(ctx, TEXTS, model="nli-mnli")


@pytest.mark.parametrize("order", list(ORDERS))
async def test_rerank_with_an_nli_head_scores_entailment(ctx, nli_dirs, order):
    import transformers

    docs = ["A laptop battery failed.", "Football results.", "Tax refunds explained."]
    out = await rerank(ctx, "broken laptop battery", docs, model=f"nli-{order}")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(nli_dirs[order]).eval()
    tok = transformers.AutoTokenizer.from_pretrained(nli_dirs[order])
    with torch.no_grad():
        logits = model(**tok(["broken laptop battery"] * 3, docs, return_tensors="pt", padding=True)).logits
    entail = next(i for i, n in ORDERS[order].items() if n.lower() == "entailment")
    want = torch.softmax(logits, -1)[:, entail].tolist()
    assert {r.index: r.score for r in out.results} == pytest.approx(dict(enumerate(want)), abs=1e-4)
