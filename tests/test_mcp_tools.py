"""Every tool through a real MCP client connected in memory (schema, result, errors, progress)."""

from __future__ import annotations

import json
import re

import pytest
from mcp import Client

from sie_mcp.mcp_server import build_mcp, owned_runtime
from sie_mcp.runtime import build_runtime
from sie_mcp.settings import Settings

pytestmark = pytest.mark.anyio

TAXONOMY = {"Electronics": {"Computers": ["Laptops", "Desktops"], "Phones": ["Smartphones", "Landlines"]},
            "Food": {"Fruit": ["Apples", "Bananas"], "Vegetables": ["Carrots", "Potatoes"]},
            "Sports": ["Football", "Tennis"]}


@pytest.fixture
def server(surface_catalog):
    settings = Settings(catalog=surface_catalog, default_ner_model="tiny-ner", max_texts=300, max_documents=50)
    return build_mcp(owned_runtime(build_runtime(settings), ["all-MiniLM-L6-v2"]))


async def test_tools_are_listed_with_schemas_and_annotations(server):
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"embed", "rerank", "extract_entities", "extract_relations", "extract", "classify",
                          "list_models", "index_documents",
                          "search", "list_collections", "delete_collection", "build_ontology", "graph_neighbors",
                          "graph_path", "graph_subgraph", "graph_search"}
    for tool in tools.values():
        assert tool.description and tool.output_schema and tool.input_schema["type"] == "object"
    for name in ("embed", "rerank", "extract_entities", "classify", "list_models", "graph_neighbors", "graph_path",
                 "graph_subgraph", "graph_search"):
        assert tools[name].annotations.read_only_hint is True and tools[name].annotations.idempotent_hint is True
    # build_ontology stores a graph; a call without `graph` starts a new one
    assert tools["build_ontology"].annotations.read_only_hint is False
    assert tools["build_ontology"].annotations.idempotent_hint is False
    assert tools["delete_collection"].annotations.destructive_hint is True
    assert tools["embed"].input_schema["required"] == ["texts"]
    assert "embeddings" in tools["embed"].output_schema["properties"]


async def test_embed_accepts_a_single_string(server):
    async with Client(server) as client:
        result = await client.call_tool("embed", {"texts": "A man is eating food."})
    assert not result.is_error
    out = result.structured_content
    assert out["model"] == "all-MiniLM-L6-v2" and out["dimensions"] == 384 and len(out["embeddings"]) == 1
    assert out["normalized"] is True and out["truncated"] == [False]
    summary = json.loads(result.content[0].text)  # the text block summarises; the vectors are structured
    assert summary["count"] == 1 and summary["dimensions"] == 384 and "embeddings" not in summary


async def test_embed_by_hf_id_with_dimensions(server):
    async with Client(server) as client:
        result = await client.call_tool("embed", {"texts": ["a", "b"], "model": "sentence-transformers/all-MiniLM-L6-v2",
                                                  "dimensions": 64, "kind": "query"})
    out = result.structured_content
    assert out["dimensions"] == 64 and len(out["embeddings"][1]) == 64


async def test_embed_reports_progress_for_long_calls(server):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total))

    async with Client(server) as client:
        result = await client.call_tool("embed", {"texts": [f"text number {i}" for i in range(200)]},
                                        progress_callback=on_progress)
    assert not result.is_error and len(result.structured_content["embeddings"]) == 200
    assert len(seen) >= 3 and seen[-1] == (200, 200)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)


def _cross_encoder_reference(catalog_path, model_id: str, query: str, docs: list[str]) -> list[float]:
    """sigmoid(logit) of transformers' BertForSequenceClassification on each (query, document) pair."""
    import torch
    import transformers
    import yaml

    entry = next(m for m in yaml.safe_load(open(catalog_path))["models"] if m["id"] == model_id)
    path = entry["source"].removeprefix("path:")
    tok = transformers.AutoTokenizer.from_pretrained(path)
    hf = transformers.BertForSequenceClassification.from_pretrained(path).eval()
    with torch.inference_mode():
        logits = hf(**tok([query] * len(docs), docs, return_tensors="pt", padding=True)).logits[:, 0]
    return torch.sigmoid(logits).tolist()


async def test_rerank_with_cross_encoder_and_with_embedder(server, surface_catalog):
    docs = ["The cat sat on the mat.", "Stock markets fell sharply today.", "Kittens love to play."]
    async with Client(server) as client:
        cross = (await client.call_tool("rerank", {"query": "cats", "documents": docs, "model": "tiny-reranker"}))
        cosine = (await client.call_tool("rerank", {"query": "cats", "documents": docs, "top_k": 2}))
    assert cross.structured_content["method"] == "cross-encoder"
    assert sorted(r["index"] for r in cross.structured_content["results"]) == [0, 1, 2]
    reference = _cross_encoder_reference(surface_catalog, "tiny-reranker", "cats", docs)
    for r in cross.structured_content["results"]:
        assert abs(r["score"] - reference[r["index"]]) <= 1e-3
    out = cosine.structured_content
    assert out["method"] == "embedding-cosine" and len(out["results"]) == 2
    assert out["results"][0]["index"] in (0, 2) and out["results"][0]["score"] >= out["results"][1]["score"]


async def test_extract_entities_spans_point_into_the_text(server):
    texts = ["Angela Merkel met Emmanuel Macron in Paris.", "Apple opened an office in Berlin."]
    async with Client(server) as client:
        result = await client.call_tool("extract_entities", {"texts": texts})
        filtered = await client.call_tool("extract_entities", {"texts": texts, "labels": ["person"]})
    out = result.structured_content
    assert out["model"] == "tiny-ner" and len(out["entities"]) == 2
    for text, entities in zip(texts, out["entities"], strict=True):
        # The tiny model tags every token B-PER (conftest.force_token_label): an entity starts at every word.
        assert {m.start() for m in re.finditer(r"\w+", text)} <= {e["start"] for e in entities}
        for e in entities:
            assert text[e["start"]:e["end"]] == e["text"] and e["label"] == "PER"
    assert all(e["label"] == "PER" for ents in filtered.structured_content["entities"] for e in ents)


async def test_classify_flat_labels(server):
    async with Client(server) as client:
        result = await client.call_tool("classify", {"texts": ["I cooked pasta with tomato sauce for dinner."],
                                                     "labels": ["cooking", "football", "elections"], "top_k": 3})
    ranked = result.structured_content["results"][0]
    assert ranked[0]["label"] == "cooking" and len(ranked) == 3
    assert ranked[0]["score"] >= ranked[1]["score"] >= ranked[2]["score"]


async def test_classify_walks_a_taxonomy(server):
    texts = ["My new notebook computer has a great keyboard and long battery life.",
             "A ripe yellow banana is a good snack."]
    async with Client(server) as client:
        result = await client.call_tool("classify", {"texts": texts, "taxonomy": TAXONOMY, "top_k": 1})
    laptop, banana = (r[0] for r in result.structured_content["results"])
    assert laptop["path"] == ["Electronics", "Computers", "Laptops"]
    assert banana["path"] == ["Food", "Fruit", "Bananas"]


async def test_classify_with_a_trained_classifier(server):
    async with Client(server) as client:
        result = await client.call_tool("classify", {"texts": ["great!"], "model": "tiny-sentiment", "top_k": 2})
    out = result.structured_content
    assert out["method"] == "sequence-classifier"
    assert {r["label"] for r in out["results"][0]} <= {"negative", "neutral", "positive"}


async def test_list_models(server):
    async with Client(server) as client:
        result = await client.call_tool("list_models", {})
    cards = {c["id"]: c for c in result.structured_content["models"]}
    assert cards["all-MiniLM-L6-v2"]["state"] == "device" and "embed" in cards["all-MiniLM-L6-v2"]["default_for"]
    assert cards["tiny-ner"]["default_for"] == ["extract_entities"]


@pytest.mark.parametrize("args, message", [
    ({"texts": "x", "model": "nope"}, "UnknownModel: unknown model 'nope'; available: all-MiniLM-L6-v2"),
    ({"texts": []}, "InvalidArguments: texts: List should have at least 1 item"),
    ({"texts": ["x"] * 301}, "InputTooLong: texts has 301 items; the limit is 300"),
    ({"texts": "x", "model": "tiny-ner"}, "UnsupportedTask: model tiny-ner is a ner model; embed takes"),
    ({"texts": "x", "model": "broken"}, "ModelLoadError"),
    ({"texts": "x", "dimensions": 0}, "InvalidArguments: dimensions: Input should be greater than or equal to 1"),
    ({"texts": 42}, "InvalidArguments: texts"),
    ({"texts": [1] * 50}, "more). Fix these arguments"),  # 50 bad items: the first 5 shown, and how many more
])
async def test_embed_errors_are_tool_errors_an_agent_can_act_on(server, args, message):
    async with Client(server) as client:
        result = await client.call_tool("embed", args)
    assert result.is_error
    text = result.content[0].text
    assert message in text and "Traceback" not in text


async def test_embed_dimensions_beyond_the_model_are_all_of_them(server):
    async with Client(server) as client:
        result = await client.call_tool("embed", {"texts": "x", "dimensions": 4096})
    assert not result.is_error and result.structured_content["dimensions"] == 384


async def test_rerank_and_classify_errors(server):
    async with Client(server) as client:
        too_many = await client.call_tool("rerank", {"query": "q", "documents": ["d"] * 51})
        both = await client.call_tool("classify", {"texts": "x", "labels": ["a"], "taxonomy": ["b"]})
        own_labels = await client.call_tool("classify", {"texts": "x", "labels": ["a"], "model": "tiny-sentiment"})
    assert too_many.is_error and "limit is 50" in too_many.content[0].text
    assert both.is_error and "give labels or taxonomy, not both" in both.content[0].text
    assert own_labels.is_error and "negative, neutral, positive" in own_labels.content[0].text


async def test_sparse_and_multi_vector_models_through_embed_and_rerank(server):
    docs = ["The cat sat on the mat.", "Stock markets fell sharply today.", "Kittens love to play."]
    async with Client(server) as client:
        sparse = (await client.call_tool("embed", {"texts": "cats and kittens", "model": "splade-tiny"}))
        multi = (await client.call_tool("embed", {"texts": ["a b c", "hello"], "model": "tiny-colbert"}))
        by_terms = (await client.call_tool("rerank", {"query": "cat", "documents": docs, "model": "splade-tiny"}))
        late = (await client.call_tool("rerank", {"query": "cats", "documents": docs, "model": "tiny-colbert"}))
    out = sparse.structured_content
    assert out["representation"] == "sparse" and out["dimensions"] == 30522 and out["embeddings"] == []
    terms = out["sparse_embeddings"][0]
    assert "cats" in terms["tokens"][:10] and terms["weights"] == sorted(terms["weights"], reverse=True)
    out = multi.structured_content
    assert out["representation"] == "multi_vector" and out["dimensions"] == 32
    assert [len(v) for v in out["multi_vector_embeddings"]] == out["token_counts"]
    assert by_terms.structured_content["method"] == "sparse-dot"
    assert by_terms.structured_content["results"][0]["index"] == 0  # the only document sharing the term 'cat'
    assert late.structured_content["method"] == "late-interaction"
    assert sorted(r["index"] for r in late.structured_content["results"]) == [0, 1, 2]
