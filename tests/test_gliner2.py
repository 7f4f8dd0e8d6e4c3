"""GLiNER2 (span architecture) vs the `gliner2` package (2.1.0, run in .venv-gliner2 by
tests/gliner2_reference.py) on a random GLiNER2 it builds offline on a tiny DeBERTa-v3.

Random weights score every span near 0.5 and every label alike, so the reference shapes them
(tests/gliner2_reference.py `_shape`): span and query projections scaled (probabilities spread over
0.4-0.99), sharper encoder attention (a marker reads its own label: labels differ), count_pred biased to 2
instances. Thresholds are given or quantiles of the model's own span probabilities (moved off any probability by 1e-5),
and every decision test asserts that some candidates were accepted and some rejected.

Thresholds: raw span / classification logits max abs diff <= 1e-4 (fp32) on every real span, counts equal;
decided spans, relations, structure values and labels identical (text, offsets, label), scores within 1e-4.
One reference run (one subprocess) serves the module.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import torch

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.errors import InputTooLong, InvalidInput, UnsupportedArchitecture
from engine.loading import LoadOptions
from engine.models.gliner2 import Gliner2Model
from engine.pool import PoolConfig
from engine.runtimes import load_runnable
from tests.gliner_fixtures import build_tokenizer, deberta_v3, run_gliner2_reference, vocab_size
from tools.context import ToolContext
from tools.gliner2 import (
    classification_schema,
    entities_schema,
    extract,
    extract_relations,
    relations_schema,
    structures_schema,
)

pytestmark = pytest.mark.slow

PARITY = 1e-4
TEXTS = ["John Smith works at Apple in New-York and visited Paris, London and the river bank.",
         "Mary lives by the river bank with her doctor who founded a software company.",
         "The company sold a product for $ 300 to John Smith in London last month!",
         "Apple",
         "the president of the company bought a new phone number from the market in paris and the engineer "
         "sold software to people in london , new york and paris ; mary visited the bank with her doctor ."]
ENTITY_LABELS = ["person", "company", "city", "price"]
RELATIONS = ["works for", "lives in", "founded"]
CLASSES = ["sports", "business", "travel", "science"]
STRUCTURE = {"deal": ["buyer", "target::str", "price::str::the amount paid", "kind::[merger|acquisition]::str",
                      "tags::[urgent|public|private]::list"]}
RUNS = [
    {"name": "entities", "kind": "entities", "spec": ENTITY_LABELS, "quantile": 0.97},
    {"name": "relations", "kind": "relations", "spec": RELATIONS, "quantile": 0.97},
    {"name": "classify", "kind": "classify", "spec": {"classification": CLASSES}},
    {"name": "multi", "kind": "classify", "spec": {"classification": {"labels": CLASSES, "multi_label": True}},
     "cls_quantile": 0.5},
    {"name": "extract", "kind": "json", "spec": STRUCTURE, "threshold": 0.9},
]
SHAPE = {"scale": 2.0, "field_scale": 4.0, "attention_scale": 6.0, "count": 2, "count_bias": 20.0}


# The count layer does not touch classification; its probabilities differ, so structures take a quantile.
V2_RUNS = [r for r in RUNS if r["kind"] in ("entities", "relations")] + [
    {"name": "extract", "kind": "json", "spec": STRUCTURE, "quantile": 0.9}]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """count_lstm (gliner2-multi-v1's count layer) and count_lstm_v2 (a small transformer over the fields)."""
    work = tmp_path_factory.mktemp("gliner2_ref")
    tok = build_tokenizer(work / "tokenizer")
    spec = {"tokenizer": str(tok), "out": str(work / "out"), "cases": [
        {"name": "base", "encoder_config": deberta_v3(vocab_size(tok)), "seed": 0, "max_width": 8, "shape": SHAPE,
         "texts": TEXTS, "runs": RUNS},
        {"name": "v2", "encoder_config": deberta_v3(vocab_size(tok)), "seed": 1, "max_width": 8, "shape": SHAPE,
         "counting_layer": "count_lstm_v2", "texts": TEXTS, "runs": V2_RUNS}]}
    out = run_gliner2_reference(spec, work)
    return {name: (out / name / "model", torch.load(out / name / "ref.pt")) for name in ("base", "v2")}


@pytest.fixture(scope="module")
def reference(references):
    return references["base"]


def _schema(kind: str, spec):
    if kind == "entities":
        return entities_schema(spec)
    if kind == "relations":
        return relations_schema(spec)
    if kind == "classify":
        (task, cfg), = spec.items()
        if isinstance(cfg, dict):
            return classification_schema(cfg["labels"], cfg.get("multi_label", False), cfg.get("cls_threshold", 0.5),
                                         task)
        return classification_schema(cfg, task=task)
    return structures_schema(spec)


def _engine(path: Path, name: str = "g2", max_length: int | None = None) -> Engine:
    catalog = Catalog()
    catalog.add(CatalogEntry(id=name, source=f"path:{path}", task="extract", runtime="gliner2", dtype="float32",
                             max_length=max_length))
    return Engine(catalog, PoolConfig(device="cpu"))


def _decode(path: Path, run: dict, texts=TEXTS, max_length: int | None = None):
    async def go():
        engine = _engine(path, max_length=max_length)
        await engine.start()
        try:
            return await engine.schema_extract("g2", texts, _schema(run["kind"], run["spec"]), run["threshold"])
        finally:
            await engine.shutdown()
    return asyncio.run(go())


def _clip(text: str, d: dict) -> tuple[str, int, int] | None:
    """A reference span in the caller's text (gliner2 appends '.' to a text without end punctuation)."""
    start, end = d["start"], min(d["end"], len(text))
    surface = text[start:end].strip()
    return (surface, start, end) if surface else None


@pytest.mark.parametrize(("case", "run_name"), [("base", r["name"]) for r in RUNS] +
                         [("v2", r["name"]) for r in V2_RUNS])
def test_raw_logits_match_gliner2(references, case, run_name):
    path, ref = references[case]
    run = ref["runs"][run_name]
    model = load_runnable(path, LoadOptions(dtype="float32"))
    assert isinstance(model, Gliner2Model) and model.info.runtime == "gliner2"
    prepared = model.front.prepare(TEXTS, _schema(run["kind"], run["spec"]))
    assert [w.text for w in prepared.windows] == list(range(len(TEXTS)))  # every parity text fits one window
    outputs = model.forward(model.make_batch(prepared.items))
    finite = 0
    for ours, theirs in zip(outputs, run["raw"], strict=True):
        assert len(ours.logits) == len(theirs)
        for count, got, want in zip(ours.counts, ours.logits, theirs, strict=True):
            if want["logits"] is None:
                assert got is None
                continue
            assert got is not None and got.shape == want["logits"].shape
            if got.dim() == 4:
                assert count == want["count"] == 2
            mask = torch.isfinite(want["logits"])
            assert torch.equal(mask, torch.isfinite(got))
            assert (got[mask] - want["logits"][mask]).abs().max().item() <= PARITY
            finite += int(mask.sum())
    assert finite > 0


def _entities_ref(results: list[dict]) -> list[dict[tuple, float]]:
    out = []
    for text, r in zip(TEXTS, results, strict=True):
        found = {}
        for label, spans in r["entities"].items():
            for d in spans:
                c = _clip(text, d)
                if c:
                    found[(label, *c)] = d["confidence"]
        out.append(found)
    return out


def _same(ours: list[dict[tuple, float]], theirs: list[dict[tuple, float]]) -> None:
    for o, t in zip(ours, theirs, strict=True):
        assert set(o) == set(t)
        for k in o:
            assert abs(o[k] - t[k]) <= PARITY, k


def _candidates(run: dict) -> int:
    """Span probabilities at or above the run's threshold (what decoding chose among)."""
    return sum(int((torch.sigmoid(t["logits"]) >= run["threshold"]).sum()) for r in run["raw"] for t in r
               if t["logits"] is not None and t["logits"].dim() == 4)


@pytest.mark.parametrize("case", ["base", "v2"])
def test_entities_match_gliner2(references, case):
    path, ref = references[case]
    run = ref["runs"]["entities"]
    ours = [{(e.label, e.text, e.start, e.end): e.score for e in r.entities} for r in _decode(path, run)]
    theirs = _entities_ref(run["results"])
    _same(ours, theirs)
    accepted = sum(len(x) for x in ours)
    assert 0 < accepted < _candidates(run)  # the threshold and the greedy decoder both bit
    by_label = {label: {k[1:] for x in ours for k in x if k[0] == label} for label in ENTITY_LABELS}
    assert len({frozenset(v) for v in by_label.values()}) > 1  # labels decide differently
    for text, r in zip(TEXTS, ours, strict=True):
        for _, surface, start, end in r:
            assert text[start:end] == surface


@pytest.mark.parametrize("case", ["base", "v2"])
def test_relations_match_gliner2(references, case):
    path, ref = references[case]
    run = ref["runs"]["relations"]
    ours = [[((x.relation, x.head.text, x.head.start, x.head.end, x.tail.text, x.tail.start, x.tail.end),
              (x.head.score, x.tail.score)) for x in r.relations] for r in _decode(path, run)]
    theirs = []
    for text, r in zip(TEXTS, run["results"], strict=True):
        found = []  # in gliner2's order: relation types as asked, then instances (two instances may agree)
        for rel, instances in r["relation_extraction"].items():
            for inst in instances:
                h, t = _clip(text, inst["head"]), _clip(text, inst["tail"])
                if h and t:
                    found.append(((rel, *h, *t), (inst["head"]["confidence"], inst["tail"]["confidence"])))
        theirs.append(found)
    for o, t in zip(ours, theirs, strict=True):
        assert [k for k, _ in o] == [k for k, _ in t]
        for (_, a), (_, b) in zip(o, t, strict=True):
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= PARITY
    assert 0 < 2 * sum(len(x) for x in ours) < _candidates(run)  # some spans accepted, some rejected
    assert len({k[0] for x in ours for k, _ in x}) > 1  # more than one relation type found


@pytest.mark.parametrize("run_name", ["classify", "multi"])
def test_classification_matches_gliner2(reference, run_name):
    path, ref = reference
    run = ref["runs"][run_name]
    ours = [r.classifications["classification"] for r in _decode(path, run)]
    decisions = []
    for got, want in zip(ours, run["results"], strict=True):
        want = want["classification"]
        if run_name == "classify":
            assert got[0][0] == want["label"] and abs(got[0][1] - want["confidence"]) <= PARITY
            assert len(got) == len(CLASSES)
            decisions.append(got[0][0])
        else:
            assert {label for label, _ in got} == {w["label"] for w in want}
            scores = {w["label"]: w["confidence"] for w in want}
            assert all(abs(p - scores[label]) <= PARITY for label, p in got)
            decisions.append(len(got))
    if run_name == "classify":
        # the text moves the ranking (random weights leave one label on top everywhere); labels differ
        assert len({tuple(label for label, _ in g) for g in ours}) > 1
        assert all(g[0][1] - g[-1][1] > 0.05 for g in ours)
    else:
        assert 0 < min(decisions) and max(decisions) < len(CLASSES)  # some labels in, some out


@pytest.mark.parametrize("case", ["base", "v2"])
def test_structures_match_gliner2(references, case):
    path, ref = references[case]
    run = ref["runs"]["extract"]
    ours = [r.structures.get("deal", []) for r in _decode(path, run)]
    values = 0
    for text, got, want in zip(TEXTS, ours, run["results"], strict=True):
        expected = []
        for inst in want["deal"]:
            norm = {}
            for name, value in inst.items():
                items = value if isinstance(value, list) else [] if value is None else [value]
                vals = []
                for v in items:
                    if "start" in v:
                        c = _clip(text, v)
                        if c:
                            vals.append((c[0], c[1], c[2], v["confidence"]))
                    else:
                        vals.append((v["text"], None, None, v["confidence"]))
                norm[name] = vals
            if any(norm.values()):
                expected.append(norm)
        mine = [{name: [(v.text, v.start, v.end, v.score) for v in vals] for name, vals in inst.items()}
                for inst in got]
        assert len(mine) == len(expected)
        for m, e in zip(mine, expected, strict=True):
            assert m.keys() == e.keys()
            for name in m:
                assert [x[:3] for x in m[name]] == [x[:3] for x in e[name]], name
                assert all(abs(a[3] - b[3]) <= PARITY for a, b in zip(m[name], e[name], strict=True))
                values += len(m[name])
    assert 0 < values < _candidates(run)
    choices = [v for r in ours for inst in r for v in inst["kind"] + inst["tags"]]
    assert choices and all(v.start is None for v in choices)  # the choice fields decided something


def test_long_text_windows_map_offsets(reference):
    """A text longer than the window runs as overlapping word windows; offsets index the caller's text."""
    path, ref = reference
    run = ref["runs"]["entities"]
    long_text = " ".join(TEXTS[:3] * 6)
    model = load_runnable(path, LoadOptions(dtype="float32", max_length=96))
    assert isinstance(model, Gliner2Model)
    prepared = model.front.prepare([long_text], entities_schema(ENTITY_LABELS))
    assert len(prepared.windows) > 3 and all(len(it) <= 96 for it in prepared.items)
    spans = [(w.first_word, w.end_word) for w in prepared.windows]
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))  # windows overlap
    (result,) = _decode(path, run, [long_text], max_length=96)
    assert result.entities
    assert max(e.start for e in result.entities) > len(long_text) // 2  # found past the first windows
    for e in result.entities:
        assert long_text[e.start:e.end] == e.text
    for label in ENTITY_LABELS:  # per type, kept spans never overlap (one greedy pass over all windows)
        mine = sorted((e.start, e.end) for e in result.entities if e.label == label)
        assert all(a[1] <= b[0] for a, b in zip(mine, mine[1:], strict=False))
    for name, window in (("relations", 96), ("extract", 192)):  # every offset indexes the long text
        (other,) = _decode(path, ref["runs"][name], [long_text], max_length=window)
        values = [v for r in other.relations for v in (r.head, r.tail)]
        values += [v for insts in other.structures.values() for inst in insts for vs in inst.values() for v in vs
                   if v.start is not None]
        assert values and max(v.start or 0 for v in values) > len(long_text) // 2
        assert all(long_text[v.start:v.end] == v.text for v in values)


def test_checkpoint_of_another_variant_fails_naming_the_field(reference, tmp_path):
    path, _ = reference
    copy = tmp_path / "boundary"
    shutil.copytree(path, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "architecture": "boundary"}))
    with pytest.raises(UnsupportedArchitecture, match="architecture"):
        load_runnable(copy, LoadOptions(dtype="float32"))
    (copy / "config.json").write_text(json.dumps({**config, "counting_layer": "count_lstm_moe"}))
    with pytest.raises(UnsupportedArchitecture, match="counting_layer"):
        load_runnable(copy, LoadOptions(dtype="float32"))


def test_registered_by_path_is_detected_and_tools_run(reference):
    """`--model NAME=PATH` types a gliner2 directory as `extract`; the four tools run on it; bad schemas are
    InvalidInput (HTTP 400) naming the field."""
    from tools.classify import classify
    from tools.entities import extract_entities
    from tools.models import list_models

    path, _ = reference
    catalog = Catalog()
    entry = catalog.register_path(f"mine={path}")
    assert entry.task == "extract"

    async def go():
        engine = Engine(catalog, PoolConfig(device="cpu"))
        await engine.start()
        ctx = ToolContext(engine=engine)
        try:
            card = next(c for c in list_models(ctx).models if c.id == "mine")
            assert card.tasks == ["entities", "relations", "classify", "extract"]
            ents = await extract_entities(ctx, TEXTS[:2], model="mine", labels=ENTITY_LABELS, threshold=0.9)
            assert ents.method == "zero-shot" and len(ents.entities) == 2
            rels = await extract_relations(ctx, TEXTS[:2], RELATIONS, model="mine", threshold=0.9)
            assert len(rels.relations) == 2
            out = await extract(ctx, TEXTS[:2], STRUCTURE, model="mine", threshold=0.9)
            assert set(out.results[0]) == {"deal"}
            cls = await classify(ctx, TEXTS[:2], labels=CLASSES, model="mine", top_k=2)
            assert cls.method == "gliner2" and all(len(r) == 2 for r in cls.results)
            multi = await classify(ctx, TEXTS[:2], labels=CLASSES, model="mine", multi_label=True)
            assert all(r for r in multi.results)
            bad = [({"deal": ["kind::[merger|acquisition::str"]}, r"schema\['deal'\]\[0\].*choice"),
                   ({"deal": ["::str"]}, r"schema\['deal'\]\[0\].*field name"),
                   ({"deal": []}, r"schema\['deal'\]"),
                   ({"deal": ["a", "a::str"]}, "twice"),
                   ({}, "schema must be")]
            for schema, message in bad:
                with pytest.raises(InvalidInput, match=message):
                    await extract(ctx, TEXTS[:1], schema, model="mine")
            with pytest.raises(InvalidInput, match="relations"):
                await extract_relations(ctx, TEXTS[:1], [], model="mine")
            with pytest.raises(InputTooLong, match="labels"):
                await classify(ctx, TEXTS[:1], labels=[f"l{i}" for i in range(101)], model="mine")
            with pytest.raises(InvalidInput, match="schema takes"):
                await extract_entities(ctx, TEXTS[:1], model="mine", labels=[f"label {i} " * 20 for i in range(40)])
        finally:
            await engine.shutdown()

    asyncio.run(go())



def test_an_input_alone_equals_it_in_a_packed_batch(reference):
    """Batch invariance: many texts x one schema in one packed forward give each text what it gets alone."""
    path, ref = reference
    run = ref["runs"]["extract"]
    model = load_runnable(path, LoadOptions(dtype="float32"))
    assert isinstance(model, Gliner2Model)
    prepared = model.front.prepare(TEXTS, _schema(run["kind"], run["spec"]))
    together = model.forward(model.make_batch(prepared.items))
    for item, packed in zip(prepared.items, together, strict=True):
        (alone,) = model.forward(model.make_batch([item]))
        assert alone.counts == packed.counts
        for a, b in zip(alone.logits, packed.logits, strict=True):
            assert a is not None and b is not None
            mask = torch.isfinite(a)
            assert torch.equal(mask, torch.isfinite(b)) and (a[mask] - b[mask]).abs().max().item() <= 1e-5


def test_catalog_entries_say_why_they_are_unavailable_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    catalog = Catalog.default()
    for name in ("fastino/gliner2-base-v1", "fastino/gliner2-large-v1"):
        entry = catalog.get(name)
        assert entry.task == "extract" and entry.runtime == "gliner2"
        availability, note = entry.availability()
        assert availability in ("cached", "unavailable")
        assert availability == "cached" or "--model NAME=PATH" in note


def test_a_tokenizer_without_the_special_tokens_gets_them_as_gliner2_adds_them(reference, tmp_path):
    """gliner2 adds its special tokens at load when the checkpoint's tokenizer lacks them: so do we, at the
    same ids, and the model computes the same."""
    path, ref = reference
    copy = tmp_path / "bare"
    shutil.copytree(path, copy)
    raw = json.loads((copy / "tokenizer.json").read_text())
    raw["added_tokens"] = [t for t in raw["added_tokens"] if t["content"] not in ("[SEP_STRUCT]", "[SEP_TEXT]", "[P]",
                           "[C]", "[E]", "[R]", "[L]", "[EXAMPLE]", "[OUTPUT]", "[DESCRIPTION]")]
    (copy / "tokenizer.json").write_text(json.dumps(raw))
    ours, theirs = (load_runnable(p, LoadOptions(dtype="float32")) for p in (copy, path))
    assert isinstance(ours, Gliner2Model) and isinstance(theirs, Gliner2Model)
    assert ours.front.special_ids == theirs.front.special_ids
    schema = _schema("entities", ENTITY_LABELS)
    a = ours.forward(ours.make_batch(ours.front.prepare(TEXTS[:2], schema).items))
    b = theirs.forward(theirs.make_batch(theirs.front.prepare(TEXTS[:2], schema).items))
    assert all(torch.equal(x.logits[0], y.logits[0]) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
