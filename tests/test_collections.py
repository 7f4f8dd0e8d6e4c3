"""Collections on the real embedded Chroma: index -> search -> filter -> rerank -> persistence across a
restart, over MCP (in memory) and HTTP (a real server process); chunking with offsets; bounds and errors."""

from __future__ import annotations

import itertools
import json

import pytest
from mcp import Client

from sie_mcp.mcp_server import build_mcp, owned_runtime
from sie_mcp.runtime import build_runtime
from sie_mcp.settings import Settings
from tools.chunking import chunk_text

pytestmark = pytest.mark.anyio

PRODUCTS = [
    {"id": "p1", "text": "Acme X1 laptop, 14-inch screen, 16 GB RAM, all-day battery.",
     "metadata": {"brand": "Acme", "category": "laptops", "price": 999}},
    {"id": "p2", "text": "Acme Tab 8, an eight-inch tablet for reading and video.",
     "metadata": {"brand": "Acme", "category": "tablets", "price": 249}},
    {"id": "p3", "text": "Zenit trail running shoes, waterproof, size 38 to 46.",
     "metadata": {"brand": "Zenit", "category": "shoes", "price": 89}},
    {"id": "p4", "text": "Zenit UltraBook 13, a light laptop with a 13-inch display.",
     "metadata": {"brand": "Zenit", "category": "laptops", "price": 1299}},
    {"id": "p5", "text": "Organic green tea, 100 bags, from Japan.",
     "metadata": {"brand": "Leaf", "category": "food", "price": 12.5}},
]


def settings(data_dir, catalog, **kw) -> Settings:
    return Settings(catalog=catalog, default_ner_model="tiny-ner", default_rerank_model="tiny-reranker",
                    data_dir=data_dir, **kw)


def server_for(s: Settings):
    return build_mcp(owned_runtime(build_runtime(s), ["all-MiniLM-L6-v2"]))


def ok(result) -> dict:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def test_chunks_carry_offsets_into_the_text_and_overlap():
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = chunk_text(text, size=300, overlap=60)
    assert len(chunks) > 10 and chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlapping windows
        assert text[b.start - 1] == " "  # each starts on a word boundary
    assert all(text[c.start:c.end] == c.text and len(c.text) <= 300 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks[:-1])  # cut at sentence ends where there is one
    assert chunk_text("   ") == []


async def test_index_search_filter_rerank_and_persist_across_restart(surface_catalog, tmp_path):
    data = tmp_path / "data"
    long_doc = {"id": "manual", "text": ("Setup guide. " + "Unpack the device and read the safety notes. " * 40
                                         + "To reset the router, hold the red button for ten seconds.")}
    async with Client(server_for(settings(data, surface_catalog))) as client:
        indexed = ok(await client.call_tool("index_documents", {"collection": "shop", "documents": PRODUCTS}))
        manual = ok(await client.call_tool("index_documents", {"collection": "docs", "documents": [long_doc]}))
        hits = ok(await client.call_tool("search", {"collection": "shop", "query": "a notebook computer",
                                                    "top_k": 2}))
        cheap = ok(await client.call_tool("search", {"collection": "shop", "query": "a notebook computer",
                                                     "filter": {"price": {"$lt": 1000}, "category": "laptops"}}))
        brands = ok(await client.call_tool("search", {"collection": "shop", "query": "laptop", "top_k": 5,
                                                      "filter": {"brand": {"$in": ["Zenit", "Leaf"]}}}))
        reranked = ok(await client.call_tool("search", {"collection": "shop", "query": "laptop", "top_k": 3,
                                                        "rerank": True}))
        reset = ok(await client.call_tool("search", {"collection": "docs", "query": "how to reset the router",
                                                     "top_k": 1, "return_text": True}))
    assert indexed == {"collection": "shop", "model": "all-MiniLM-L6-v2", "documents": 5, "chunks": 5,
                       "ids": ["p1", "p2", "p3", "p4", "p5"], "collection_chunks": 5}
    assert manual["chunks"] > 1
    assert {h["id"] for h in hits["results"]} == {"p1", "p4"} and hits["method"] == "vector"
    assert [h["id"] for h in cheap["results"]] == ["p1"] and cheap["results"][0]["metadata"]["price"] == 999
    assert {h["id"] for h in brands["results"]} == {"p3", "p4", "p5"}
    assert reranked["method"] == "vector+cross-encoder" and len(reranked["results"]) == 3
    hit = reset["results"][0]
    assert hit["id"] == "manual" and "red button" in hit["text"]
    assert long_doc["text"][hit["start"]:hit["end"]] == hit["text"]  # offsets point into the document

    # A new server on the same data directory: the collections are still there.
    async with Client(server_for(settings(data, surface_catalog))) as client:
        listed = ok(await client.call_tool("list_collections", {}))
        again = ok(await client.call_tool("search", {"collection": "shop", "query": "running shoes", "top_k": 1}))
        replaced = ok(await client.call_tool("index_documents", {"collection": "shop", "documents": [
            {"id": "p3", "text": "Zenit hiking boots, leather.", "metadata": {"brand": "Zenit", "price": 150}}]}))
        deleted = ok(await client.call_tool("delete_collection", {"collection": "docs"}))
        gone = await client.call_tool("search", {"collection": "docs", "query": "router"})
    assert {c["name"]: c["chunks"] for c in listed["collections"]} == {"docs": manual["chunks"], "shop": 5}
    assert again["results"][0]["id"] == "p3"
    assert replaced["collection_chunks"] == 5  # p3's old chunk was replaced, not added to
    assert deleted == {"collection": "docs", "deleted_chunks": manual["chunks"]}
    assert gone.is_error and gone.content[0].text.startswith("UnknownCollection: no collection 'docs'")


@pytest.mark.parametrize("args, message", [
    # The schema's own words (sie_mcp/tooldefs/): each names the field and what it takes.
    ({"collection": "a b", "documents": ["x"]}, "collection: String should match pattern"),
    ({"collection": "shop", "documents": [{"text": "x", "metadata": {"tags": ["a"]}}]}, "documents.0.metadata.tags"),
    ({"collection": "shop", "documents": [{"text": "x", "metadata": {"_doc": "a"}}]},
     "metadata._doc: String should match pattern '^[^_$]'"),
    ({"collection": "shop", "documents": [{"text": "x", "metadata": {"$and": 1}}]},
     "metadata.$and: String should match pattern '^[^_$]'"),
    ({"collection": "shop", "documents": [{"text": "x", "metadata": {"n": 2**70}}]}, "integer beyond 64 bits"),
    ({"collection": "shop", "documents": [{"body": "x"}]}, "documents.0.text: Field required"),
    ({"collection": "shop", "documents": ["x"], "model": "tiny-ner"}, "UnsupportedTask"),
    ({"collection": "shop", "documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "share an id"),
])
async def test_index_errors_say_what_to_fix(surface_catalog, tmp_path, args, message):
    async with Client(server_for(settings(tmp_path, surface_catalog))) as client:
        result = await client.call_tool("index_documents", args)
    assert result.is_error and message in result.content[0].text


async def test_search_errors_and_bounds(surface_catalog, tmp_path):
    s = settings(tmp_path, surface_catalog, max_collection_chunks=3, max_collections=1)
    async with Client(server_for(s)) as client:
        ok(await client.call_tool("index_documents", {"collection": "one", "documents": ["a", "b"]}))
        too_many = await client.call_tool("index_documents", {"collection": "one", "documents": ["c", "d"]})
        second = await client.call_tool("index_documents", {"collection": "two", "documents": ["c"]})
        bad_op = await client.call_tool("search", {"collection": "one", "query": "a", "filter": {"x": {"$like": 1}}})
        bad_range = await client.call_tool("search", {"collection": "one", "query": "a",
                                                      "filter": {"x": {"$lt": "b"}}})
        # Client mistakes Chroma itself would refuse with its own error (a 503 "retry"): refused here as
        # the caller's, before the query is embedded.
        mistakes = [await client.call_tool("search", {"collection": "one", "query": "a", "filter": f})
                    for f in ({"x": {}}, {"x": {"$in": [1, "b"]}}, {"x": {"$in": [True, 1]}})]
    assert mistakes[0].is_error and mistakes[0].content[0].text.startswith("InvalidInput: filter x")
    assert all(m.is_error and "filter.x.$in" in m.content[0].text for m in mistakes[1:]), \
        [m.content[0].text for m in mistakes]
    assert too_many.is_error and "the limit is 3" in too_many.content[0].text
    assert second.is_error and "the limit is 1" in second.content[0].text
    assert bad_op.is_error and "filter.x.$like: Extra inputs are not permitted" in bad_op.content[0].text
    assert bad_range.is_error and "filter.x.$lt: Input should be a valid number" in bad_range.content[0].text
