"""Every tool's argument model and its checks before work, fed hostile values by hypothesis: lone
surrogates, deep nesting, huge lists, wrong types. Each example is refused with a typed error (pydantic's
ValidationError, or an engine InvalidInput with a bounded message) or accepted as clean text, quickly,
and never with any other exception. This is the validation every transport runs (HTTP, MCP, stdio)."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.errors import InvalidInput
from sie_mcp.errors import MAX_MESSAGE_CHARS, public_message
from sie_mcp.declare import surface
from tools.context import Limits, as_texts
from tools.taxonomy_limits import check_taxonomy

LIMITS = Limits(max_texts=64, max_chars=2000, max_documents=64, max_labels=200)
TOOLS = surface(limits=LIMITS)

# Text with surrogates (category Cs), controls, separators and ordinary letters.
hostile_text = st.text(st.characters(categories=["Cs", "Cc", "Zs", "L", "N", "P", "S"]), max_size=40)
leaves = st.one_of(hostile_text, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none())
nested = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(hostile_text, inner, max_size=4)),
                      max_leaves=60)


def deep(depth: int, leaf: Any = "a") -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def huge_lists() -> st.SearchStrategy:
    return st.sampled_from([["x"] * 5000, [1] * 5000, ["\ud800"] * 100, [" > ".join(["a"] * 2000)],
                            [[["x"]]] * 200])


values = st.one_of(hostile_text, nested, huge_lists(), st.integers(0, 40).map(deep),
                   st.integers(150, 400).map(lambda d: deep(d, {})))


def pre_work_checks(name: str, kwargs: dict[str, Any]) -> None:
    """What each tool checks before any engine work (tools/*.py, in their order)."""
    if "texts" in kwargs:
        as_texts(kwargs["texts"], LIMITS)
    if name == "rerank":
        as_texts(kwargs["query"], LIMITS, "query")
        as_texts(kwargs["documents"], LIMITS, "documents", max_items=LIMITS.max_documents)
    if name == "extract_entities" and kwargs.get("labels") is not None:
        as_texts(kwargs["labels"], LIMITS, "labels", max_items=LIMITS.max_labels)
    if name == "classify":
        if kwargs.get("taxonomy") is not None:
            check_taxonomy(kwargs["taxonomy"], LIMITS)
        if kwargs.get("labels") is not None:
            as_texts(kwargs["labels"], LIMITS, "labels", max_items=LIMITS.max_labels)


def check(name: str, arguments: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    try:
        kwargs = TOOLS[name].validate(arguments)
        pre_work_checks(name, kwargs)
    except ValidationError as e:
        assert len(str(e)) < 4000  # bounded, whatever the input (BoundedFuncMetadata)
    except InvalidInput as e:  # InputTooLong included
        assert len(public_message(e)) <= MAX_MESSAGE_CHARS
    else:
        for text in _strings(kwargs):
            text.encode("utf-8")  # accepted text is valid Unicode: no lone surrogate reaches a tokenizer
    # Milliseconds on a quiet machine; a stall detector with room for a loaded CI machine.
    assert time.perf_counter() - t0 < 5.0, f"{name}: {time.perf_counter() - t0:.2f} s"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


@FUZZ
@given(texts=values, model=st.one_of(st.none(), hostile_text), dimensions=leaves, normalize=leaves,
       kind=st.one_of(st.none(), hostile_text))
def test_embed_arguments(texts, model, dimensions, normalize, kind):
    check("embed", {"texts": texts, "model": model, "dimensions": dimensions, "normalize": normalize, "kind": kind})


@FUZZ
@given(query=values, documents=values, top_k=leaves)
def test_rerank_arguments(query, documents, top_k):
    check("rerank", {"query": query, "documents": documents, "top_k": top_k})


@FUZZ
@given(texts=values, labels=values)
def test_extract_entities_arguments(texts, labels):
    check("extract_entities", {"texts": texts, "labels": labels})


@FUZZ
@given(texts=st.one_of(hostile_text, st.lists(hostile_text, max_size=3)), taxonomy=values, labels=values,
       top_k=leaves, beam=leaves)
def test_classify_arguments(texts, taxonomy, labels, top_k, beam):
    check("classify", {"texts": texts, "taxonomy": taxonomy, "labels": None, "top_k": top_k, "beam": beam})
    check("classify", {"texts": texts, "labels": labels, "top_k": top_k})


@FUZZ
@given(extra=st.dictionaries(hostile_text, nested, max_size=4))
def test_list_models_arguments(extra):
    check("list_models", extra)


def test_the_reproductions_are_refused_by_the_checks():
    """The hostile values of issue 17 hit a typed refusal (these raised or stalled before)."""
    import pytest

    from engine.errors import InputTooLong

    with pytest.raises(InputTooLong):
        check_taxonomy([" > ".join(["a"] * 20000)], Limits())
    with pytest.raises(InputTooLong):
        check_taxonomy(deep(950, {}), Limits())
    with pytest.raises(InvalidInput, match="surrogate"):
        as_texts(["ok", "\ud800"], Limits())
    with pytest.raises(InputTooLong):
        check_taxonomy({f"c{i}": [f"l{j}" for j in range(10)] for i in range(300)}, Limits())
