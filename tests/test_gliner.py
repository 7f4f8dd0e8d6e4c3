"""GLiNER zero-shot NER vs the `gliner` package (0.2.29, run in .venv-gliner by tests/gliner_reference.py) on
random GLiNERs it builds offline from tiny configs: DeBERTa-v3 and ModernBERT backbones × span (markerV0) and
token-level heads, with and without the backbone→GLiNER projection; texts of 1 to ~150 words; 1, 3 and 8 labels.

Thresholds: span / token logits max abs diff ≤ 1e-4 (fp32) on every real span; decoded entities identical in
text, offsets and label, scores within 1e-4, for flat, nested and multi-label decoding at two thresholds.
One reference run (one subprocess, four models) serves the module.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import shutil

import pytest
import torch
from tokenizers import Tokenizer

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import InvalidInput, UnsupportedArchitecture, UnsupportedTask
from engine.loading import LoadOptions
from engine.models.gliner import GlinerModel, load_gliner
from engine.pool import PoolConfig
from engine.runtimes import load_runnable
from tests.gliner_fixtures import (
    build_tokenizer,
    deberta_v3,
    gliner_config,
    modernbert,
    run_reference,
    vocab_size,
)

# The reference subprocess (a fresh venv's gliner import plus four models) is most of this module's time.
pytestmark = pytest.mark.slow

PARITY = 1e-4
WORDS = ["john", "smith", "works", "at", "apple", "in", "new-york", "and", "visited", "paris", ",", "london", ";",
         "the", "company", "sold", "a", "product", "for", "$", "300", ".", "mary", "lives", "by", "the", "river",
         "bank", "with", "her", "doctor", "who", "founded", "a", "software", "market"]
LABEL_SETS = [["person"], ["person", "organization", "location"],
              ["person", "company", "city", "price", "product", "phone number", "date", "river"]]
# Thresholds are quantiles of each random model's span probabilities (tests/gliner_reference.py picks them).
SPAN_DECODE = [{"quantile": 0.97, "flat": True, "multi_label": False},
               {"quantile": 0.97, "flat": False, "multi_label": False},
               {"quantile": 0.9, "flat": True, "multi_label": True},
               {"quantile": 0.99, "flat": False, "multi_label": True}]
TOKEN_DECODE = [{"quantile": q, "flat": f, "multi_label": m}
                for q, f, m in [(0.5, True, False), (0.5, False, False), (0.3, True, True), (0.6, False, True)]]


def _texts() -> list[str]:
    rng = random.Random(1)
    out = ["Apple", "John Smith works at Apple in New-York.", "   "]
    for n in (7, 25, 60, 150):
        out.append(" ".join(rng.choice(WORDS) for _ in range(n)))
    return out


TEXTS = _texts()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("gliner_ref")
    tok = build_tokenizer(work / "tokenizer")
    vocab = vocab_size(tok)
    cases = {
        "deberta_span": (deberta_v3(vocab), gliner_config("markerV0", 24)),  # 32 -> 24: the projection
        "deberta_token": (deberta_v3(vocab), gliner_config("token_level", 32)),
        "modernbert_span": (modernbert(vocab), gliner_config("markerV0", 32)),
        "modernbert_token": (modernbert(vocab), gliner_config("token_level", 24)),
    }
    spec = {"tokenizer": str(tok), "out": str(work / "out"), "cases": [
        {"name": name, "encoder_config": enc, "gliner": g, "seed": i, "scale": 4.0, "label_sets": LABEL_SETS,
         "texts": TEXTS, "decode": TOKEN_DECODE if "token" in name else SPAN_DECODE, "check_inference": i == 0}
        for i, (name, (enc, g)) in enumerate(cases.items())]}
    out = run_reference(spec, work)
    return {name: (out / name / "model", torch.load(out / name / "ref.pt")) for name in cases}


def _ours(path) -> GlinerModel:
    model = load_runnable(path, LoadOptions(dtype="float32"))
    assert isinstance(model, GlinerModel)
    return model


def _logits(model: GlinerModel, texts: list[str], labels: list[str]) -> list[torch.Tensor]:
    prepared = model.front.prepare(texts, labels)
    assert all(w.first_word == 0 for w in prepared.windows)  # every parity text fits one window
    return model.split_output(model.forward(model.make_batch(prepared.items)), None)  # type: ignore[arg-type]


CASES = ["deberta_span", "deberta_token", "modernbert_span", "modernbert_token"]


@pytest.mark.parametrize("case", CASES)
def test_logits_match_gliner(reference, case):
    path, ref = reference[case]
    model = _ours(path)
    assert model.info.runtime == "gliner" and model.cfg.span_mode == ("token_level" if "token" in case
                                                                     else "markerV0")
    for result in ref["results"]:
        expected = result["logits"]  # per non-empty text: [W, K, C] span or [W, C, 3] token logits
        got = _logits(model, TEXTS, result["labels"])
        assert len(got) == len(expected) == len([t for t in TEXTS if t.strip()])
        for g, e in zip(got, expected, strict=True):
            assert g.shape == e.shape
            if g.dim() == 3 and "span" in case:  # spans past the text's end are not spans
                w, k = g.shape[:2]
                valid = (torch.arange(w)[:, None] + torch.arange(k)[None, :]) < w
                g, e = g[valid], e[valid]
            assert (g - e).abs().max().item() <= PARITY, case


def _engine(path, name: str = "zs", max_length: int | None = None) -> Engine:
    catalog = Catalog()
    catalog.add(CatalogEntry(id=name, source=f"path:{path}", task="ner", runtime="gliner", dtype="float32",
                             max_length=max_length))
    return Engine(catalog, PoolConfig(device="cpu", default_dtype="float32"))


async def _zero_shot(engine: Engine, model_id: str, texts, labels, **kw):
    await engine.start()
    try:
        return await engine.zero_shot_entities(model_id, texts, labels, **kw)
    finally:
        await engine.shutdown()


@pytest.mark.parametrize("case", CASES)
def test_entities_match_gliner(reference, case):
    path, ref = reference[case]
    engine = _engine(path)

    async def run():
        await engine.start()
        try:
            outs = []
            for result in ref["results"]:
                for d in ref["decode"]:
                    outs.append(await engine.zero_shot_entities("zs", TEXTS, result["labels"], **d))
            return outs
        finally:
            await engine.shutdown()

    outs = iter(asyncio.run(run()))
    found = 0
    for result in ref["results"]:
        for expected in result["entities"]:
            got = next(outs)
            assert len(got.entities) == len(expected) == len(TEXTS)
            for g_text, e_text in zip(got.entities, expected, strict=True):
                assert [(e.start, e.end, e.text, e.label) for e in g_text] == \
                       [(e["start"], e["end"], e["text"], e["label"]) for e in e_text]
                for g, e in zip(g_text, e_text, strict=True):
                    assert abs(g.score - e["score"]) <= PARITY
                found += len(e_text)
    assert found >= 20  # the comparison is not of empty lists


def test_nested_and_multi_label_change_the_result(reference):
    """Guards the decoding comparison: the four settings must not all decode alike."""
    _, ref = reference["deberta_span"]
    per_setting = [sum(len(x) for x in e) for e in ref["results"][2]["entities"]]
    assert len(set(per_setting)) > 1


def test_batch_invariance(reference):
    path, _ = reference["deberta_span"]
    model = _ours(path)
    labels = LABEL_SETS[1]
    together = _logits(model, TEXTS, labels)
    alone = [_logits(model, [t], labels)[0] for t in TEXTS if t.strip()]
    for a, b in zip(alone, together, strict=True):
        finite = torch.isfinite(a)
        assert torch.equal(finite, torch.isfinite(b))
        assert (a[finite] - b[finite]).abs().max().item() <= 1e-5


def test_long_texts_run_as_windows_and_find_entities_in_the_tail(reference):
    """A text of over 3x the model's length (128 tokens here) runs as overlapping windows; entities far enough
    into the last window equal those of that window's words run alone (offsets shifted), so nothing is lost at
    the tail and offsets map back to the long text."""
    path, ref = reference["deberta_span"]
    threshold = 0.5  # nearly every span of this model: entities everywhere, chosen by the greedy decoding
    model = load_gliner(path, LoadOptions(dtype="float32", max_length=128))
    labels = LABEL_SETS[1]
    rng = random.Random(3)
    words = [rng.choice(WORDS) for _ in range(450)]
    for _ in range(200):  # long enough that the last window reaches 10 words past max_width beyond the one before
        long_text = " ".join(words)
        prepared = model.front.prepare([long_text], labels)
        windows = prepared.windows
        if windows[-1].end_word >= windows[-2].end_word + model.cfg.max_width + 10:
            break
        words.append(rng.choice(WORDS))
    else:
        raise AssertionError("no text length gives the last window room")
    assert len(windows) >= 3 and all(len(it) <= 128 for it in prepared.items)
    assert len(Tokenizer.from_file(str(path / "tokenizer.json")).encode(long_text).ids) > 3 * 128
    assert windows[0].first_word == 0 and windows[-1].end_word == len(prepared.words[0])
    for a, b in itertools.pairwise(windows):
        assert b.first_word == a.end_word - (model.cfg.max_width - 1)  # every span of <= 12 words fits one
    last, prev = windows[-1], windows[-2]
    tail_start = prepared.words[0][last.first_word][0]
    engine = _engine(path, max_length=128)
    whole, tail = asyncio.run(_zero_shot_pair(engine, long_text, long_text[tail_start:], labels, threshold))
    assert whole.windows == [len(windows)] and tail.windows == [1]
    cut = prepared.words[0][prev.end_word + model.cfg.max_width][0]  # beyond any span the previous window saw
    far = [(e.start, e.end, e.label, round(e.score, 5)) for e in whole.entities[0] if e.start >= cut]
    alone = [(e.start + tail_start, e.end + tail_start, e.label, round(e.score, 5)) for e in tail.entities[0]
             if e.start + tail_start >= cut]
    assert far and far == alone
    assert all(long_text[e.start:e.end] == e.text for e in whole.entities[0])


async def _zero_shot_pair(engine, a, b, labels, threshold):
    await engine.start()
    try:
        return (await engine.zero_shot_entities("zs", [a], labels, threshold=threshold),
                await engine.zero_shot_entities("zs", [b], labels, threshold=threshold))
    finally:
        await engine.shutdown()


def test_requests_are_checked(reference):
    path, _ = reference["modernbert_span"]
    for labels, kw, message in [([], {}, "labels is empty"), ([" "], {}, "non-empty"),
                                (["person"], {"threshold": 1.5}, "threshold"),
                                ([f"label {i}" for i in range(400)], {}, "fewer or shorter labels")]:
        with pytest.raises(InvalidInput, match=message):
            asyncio.run(_zero_shot(_engine(path), "zs", ["John works at Apple"], labels, **kw))


def test_empty_and_wordless_texts_have_no_entities(reference):
    path, _ = reference["modernbert_token"]
    out = asyncio.run(_zero_shot(_engine(path), "zs", ["", "   ", "John Smith"], ["person"], threshold=0.0))
    assert out.entities[0] == [] and out.entities[1] == [] and out.windows == [0, 0, 1]
    assert out.entities[2]  # threshold 0: every span qualifies, so the one text with words has entities


def test_a_gliner_dir_is_detected_and_other_models_are_refused(reference, tmp_path):
    path, _ = reference["deberta_token"]
    assert isinstance(load_runnable(path, LoadOptions(dtype="float32")), GlinerModel)  # runtime torch: detected
    bad = tmp_path / "bi"
    shutil.copytree(path, bad)
    cfg = json.loads((bad / "gliner_config.json").read_text())
    cfg["labels_encoder"] = "BAAI/bge-small-en-v1.5"
    (bad / "gliner_config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitecture, match="bi-encoder"):
        load_gliner(bad)


def test_zero_shot_needs_a_zero_shot_model(reference, minilm_dir):
    catalog = Catalog()
    catalog.add(CatalogEntry(id="minilm", source=f"path:{minilm_dir}", task="embed"))
    engine = Engine(catalog, PoolConfig(device="cpu"))
    with pytest.raises(UnsupportedTask, match="zero_shot_ner"):
        asyncio.run(_zero_shot(engine, "minilm", ["John"], ["person"]))


@pytest.fixture(scope="module")
def zero_shot_catalog(reference, minilm_dir, make_hf_model, tmp_path_factory):
    import yaml

    ner_labels = {0: "O", 1: "B-PER", 2: "I-PER"}
    ner = make_hf_model("BertForTokenClassification", id2label=ner_labels,
                        label2id={v: k for k, v in ner_labels.items()})
    catalog = {"models": [
        {"id": "all-MiniLM-L6-v2", "source": f"path:{minilm_dir}", "task": "embed", "pinned": True},
        {"id": "tiny-gliner", "source": f"path:{reference['deberta_span'][0]}", "task": "ner", "runtime": "gliner",
         "dtype": "float32"},
        {"id": "tiny-ner", "source": f"path:{ner}", "task": "ner"}]}
    path = tmp_path_factory.mktemp("zs_catalog") / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path


ZS_TEXTS = ["John Smith works at Apple in New-York.", "Mary sold a product for $ 300 in Paris."]


@pytest.mark.anyio
async def test_extract_entities_over_mcp_zero_shot(zero_shot_catalog):
    from mcp import Client

    from sie_mcp.mcp_server import build_mcp, owned_runtime
    from sie_mcp.runtime import build_runtime
    from sie_mcp.settings import Settings

    server = build_mcp(owned_runtime(build_runtime(Settings(catalog=zero_shot_catalog,
                                                            default_ner_model="tiny-gliner")), []))
    async with Client(server) as client:
        ok = await client.call_tool("extract_entities", {"texts": ZS_TEXTS, "labels": ["person", "company"],
                                                         "threshold": 0.5, "nested": True})
        missing = await client.call_tool("extract_entities", {"texts": ZS_TEXTS})
        misplaced = await client.call_tool("extract_entities", {"texts": ZS_TEXTS, "model": "tiny-ner",
                                                                "threshold": 0.3})
        tools = {t.name: t for t in (await client.list_tools()).tools}
    out = ok.structured_content
    assert not ok.is_error and out["model"] == "tiny-gliner" and out["method"] == "zero-shot"
    assert any(out["entities"]) and out["truncated"] == [False, False]
    for text, entities in zip(ZS_TEXTS, out["entities"], strict=True):
        for e in entities:
            assert text[e["start"]:e["end"]] == e["text"] and e["label"] in {"person", "company"}
            assert 0.5 < e["score"] <= 1.0
    assert missing.is_error and "zero-shot" in missing.content[0].text and "labels" in missing.content[0].text
    assert misplaced.is_error and "apply to zero-shot" in misplaced.content[0].text
    props = tools["extract_entities"].input_schema["properties"]
    assert {"threshold", "nested", "multi_label"} <= set(props)


def test_extract_entities_over_http_zero_shot(zero_shot_catalog):
    from fastapi.testclient import TestClient

    from sie_mcp.http_app import create_app
    from sie_mcp.settings import Settings

    settings = Settings(catalog=zero_shot_catalog, default_ner_model="tiny-gliner")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8080") as client:
        ok = client.post("/v1/tools/extract_entities", json={"texts": ZS_TEXTS, "labels": ["person", "city"],
                                                              "multi_label": True})
        missing = client.post("/v1/tools/extract_entities", json={"texts": ZS_TEXTS})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["method"] == "zero-shot" and len(body["entities"]) == 2 and any(body["entities"])
    assert missing.status_code == 400 and "labels" in missing.text


@pytest.mark.anyio
async def test_a_gliner_directory_registered_by_path_is_zero_shot(reference):
    """`--model NAME=PATH` on a GLiNER directory (gliner_config.json) types it ner/gliner: extract_entities
    takes it (it was typed embed, and refused)."""
    from mcp import Client

    from sie_mcp.mcp_server import build_mcp, owned_runtime
    from sie_mcp.runtime import build_runtime
    from sie_mcp.settings import Settings

    path, _ = reference["deberta_token"]
    runtime = build_runtime(Settings(model=[f"my-gliner={path}"]))
    server = build_mcp(owned_runtime(runtime, []))
    async with Client(server) as client:
        found = await client.call_tool("extract_entities", {"texts": ZS_TEXTS, "labels": ["person", "company"],
                                                            "model": "my-gliner", "threshold": 0.5})
        models = await client.call_tool("list_models", {})
    assert not found.is_error, found.content[0].text
    assert found.structured_content["method"] == "zero-shot"
    (card,) = [m for m in models.structured_content["models"] if m["id"] == "my-gliner"]
    assert card["task"] == "ner"
