"""What an agent's context receives: text sizes per tool on fixed inputs, rounded scores, complete dedented
descriptions, error texts without SDK wording, the truth of list_models, wrong-task models refused early."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from mcp import Client

from sie_mcp.mcp_server import build_mcp, owned_runtime
from sie_mcp.runtime import build_runtime
from sie_mcp.settings import Settings

pytestmark = pytest.mark.anyio

TEXTS = ["The new Acme X1 laptop has a 14-inch screen and 16 GB of memory.",
         "Barbara Liskov received the Turing Award at MIT in 2008.",
         "Fresh organic bananas, sold by the kilogram.",
         "My phone battery drains within two hours after the update.",
         "Tennis rackets and balls are on sale this weekend."]
TAXONOMY = ["Electronics > Computers > Laptops", "Electronics > Phones > Smartphones", "Food > Fruit > Bananas",
            "Sports > Tennis > Rackets", "Home > Kitchen > Cookware"]
# A fixed rerank input: 50 documents of ~360 characters (18k characters in all).
DOCS = [f"Document {i}: " + " ".join(["a long passage about product care, returns and warranty terms"] * 6)
        for i in range(50)]


@pytest.fixture
def catalog(surface_catalog, tmp_path):
    """The surface catalog plus a Hub model that is not cached (offline here) and a ner model from the Hub."""
    data = yaml.safe_load(surface_catalog.read_text())
    data["models"] += [
        {"id": "hub-ner", "source": "hf:nobody/not-cached-ner", "task": "ner", "description": "not cached"},
        {"id": "missing-package", "source": "package:no_such_module_here", "task": "embed", "description": "x"},
    ]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def server(catalog, tmp_path):
    settings = Settings(catalog=catalog, default_ner_model="tiny-ner", max_documents=50, data_dir=tmp_path / "data")
    return build_mcp(owned_runtime(build_runtime(settings), ["all-MiniLM-L6-v2"]))


def text_of(result) -> str:
    assert not result.is_error, result.content[0].text
    return result.content[0].text


def decimals(value: float) -> int:
    s = repr(value)
    return len(s.split(".")[1]) if "." in s and "e" not in s else 0


async def test_embed_text_block_is_a_summary_and_the_vectors_are_structured(server):
    async with Client(server) as client:
        result = await client.call_tool("embed", {"texts": TEXTS})
    text = text_of(result)
    summary = json.loads(text)
    assert summary["count"] == 5 and summary["dimensions"] == 384 and summary["truncated"] == []
    assert "embeddings" not in summary and "structuredContent" in summary["vectors"]
    assert len(text) < 700  # was ~24,000 characters: every vector twice
    vectors = result.structured_content["embeddings"]
    assert len(vectors) == 5 and len(vectors[0]) == 384


async def test_rerank_returns_snippets_and_rounded_scores_unless_asked_for_documents(server):
    async with Client(server) as client:
        short = await client.call_tool("rerank", {"query": "warranty terms", "documents": DOCS})
        full = await client.call_tool("rerank", {"query": "warranty terms", "documents": DOCS, "top_k": 2,
                                                 "return_documents": True})
    text = text_of(short)
    assert len(text) < 7_000  # 50 snippets of <= 81 characters, not 18k characters of documents
    results = json.loads(text)["results"]
    assert all(len(r["text"]) <= 81 and r["text"].endswith("…") for r in results)
    assert all(decimals(r["score"]) <= 4 for r in results)
    assert [r["text"] for r in full.structured_content["results"]] == [DOCS[r["index"]]
                                                                       for r in full.structured_content["results"]]


async def test_entities_and_classify_scores_have_four_decimals(server):
    async with Client(server) as client:
        ents = await client.call_tool("extract_entities", {"texts": TEXTS})
        cls = await client.call_tool("classify", {"texts": TEXTS, "taxonomy": TAXONOMY, "top_k": 1})
    assert all(decimals(e["score"]) <= 4 for per in json.loads(text_of(ents))["entities"] for e in per)
    paths = json.loads(text_of(cls))["results"]
    assert all(decimals(p[0]["score"]) <= 4 for p in paths)
    assert paths[2][0]["path"] == ["Food", "Fruit", "Bananas"]
    assert len(text_of(cls)) < 1_000


async def test_text_sizes_per_tool_on_a_fixed_scenario(server):
    """The regression guard for the context an agent pays: one fixed call per tool, its text's size."""
    limits = {"embed": 700, "rerank": 1_800, "extract_entities": 6_000, "classify": 1_000, "list_models": 4_000}
    calls = {"embed": {"texts": TEXTS}, "rerank": {"query": "warranty", "documents": DOCS[:10]},
             "extract_entities": {"texts": TEXTS}, "classify": {"texts": TEXTS, "taxonomy": TAXONOMY, "top_k": 1},
             "list_models": {}}
    async with Client(server) as client:
        sizes = {name: len(text_of(await client.call_tool(name, args))) for name, args in calls.items()}
    assert all(sizes[name] < limit for name, limit in limits.items()), sizes


async def test_descriptions_are_dedented_and_say_when_and_how(server):
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool in tools.values():
        assert not any(line.startswith(" ") for line in tool.description.splitlines()), tool.name
    assert "GPE" in tools["extract_entities"].description  # the default (spaCy, OntoNotes) model's types
    assert "cosine (0.2-0.6 is normal)" in tools["classify"].description  # what a score means
    assert "512 texts" in tools["embed"].description and "1000 documents" in tools["rerank"].description
    assert "(ner/extract)" in tools["extract_entities"].input_schema["properties"]["model"]["description"]


async def test_errors_read_without_sdk_prefixes_or_library_urls(server):
    async with Client(server) as client:
        bad_type = await client.call_tool("embed", {"texts": 42})
        unknown = await client.call_tool("embed", {"texts": "x", "model": "nope"})
    for result in (bad_type, unknown):
        text = result.content[0].text
        assert result.is_error and "Error executing tool" not in text and "http" not in text, text
    assert bad_type.content[0].text.startswith("InvalidArguments: texts")
    assert unknown.content[0].text.startswith("UnknownModel: unknown model 'nope'")


async def test_list_models_tells_availability_and_the_task_of_a_registered_directory(catalog, tmp_path, surface_catalog):
    ner_dir = yaml.safe_load(surface_catalog.read_text())["models"][2]["source"].removeprefix("path:")
    settings = Settings(catalog=catalog, default_ner_model="tiny-ner", data_dir=tmp_path / "data",
                        model=[f"my-ner={ner_dir}", f"gone={tmp_path / 'nothing'}"])
    server = build_mcp(owned_runtime(build_runtime(settings), ["all-MiniLM-L6-v2"]))
    async with Client(server) as client:
        cards = {c["id"]: c for c in json.loads(text_of(await client.call_tool("list_models", {})))["models"]}
    assert cards["my-ner"]["task"] == "ner" and cards["my-ner"]["availability"] == "local"  # was 'embed'
    assert cards["all-MiniLM-L6-v2"]["availability"] == "local" and cards["all-MiniLM-L6-v2"]["state"] == "device"
    assert cards["hub-ner"]["availability"] == "unavailable" and "HF_HUB_OFFLINE" in cards["hub-ner"]["note"]
    assert cards["missing-package"]["availability"] == "unavailable" and "pip install" in cards["missing-package"]["note"]
    assert cards["gone"]["availability"] == "unavailable"


def test_the_bundled_catalog_marks_the_embedded_default_bundled():
    from engine.catalog import Catalog

    assert Catalog.default().get("all-MiniLM-L6-v2").availability() == ("bundled", "")


async def test_a_model_of_the_wrong_task_is_refused_before_any_download(server):
    async with Client(server) as client:
        wrong = await client.call_tool("embed", {"texts": "x", "model": "hub-ner"})
        ner_ok = await client.call_tool("extract_entities", {"texts": "x", "model": "hub-ner"})
    # embed refuses from the catalog entry alone; extract_entities accepts the task and then fails to fetch.
    assert wrong.is_error and re.match(r"UnsupportedTask: model hub-ner is a ner model; embed takes",
                                       wrong.content[0].text)
    assert ner_ok.is_error and "ModelLoadError" in ner_ok.content[0].text
