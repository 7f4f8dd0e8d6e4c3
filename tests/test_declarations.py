"""Tools declared once (sie_mcp/declare.py, sie_mcp/tooldefs/): every surface says the same thing, limits from
the settings reach every schema and description, the tool list fits its budget, `--tools` narrows every
surface, and the README's tool table is the one generated from the declarations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from mcp import Client

from sie_mcp.declare import TOOL_LIST_BUDGET, declarations, readme_table, select, surface
from sie_mcp.http_app import create_app
from sie_mcp.mcp_server import build_mcp, shared_runtime
from sie_mcp.runtime import RuntimeHandle
from sie_mcp.settings import Settings
from tests.serve import SIE, serve

README = Path(__file__).parents[1] / "README.md"


def resolve(schema: Any, root: dict[str, Any]) -> Any:
    """`schema` with every local $ref replaced by what it points to (recursive definitions would loop: none
    of our declared schemas has one)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            *_, section, name = schema["$ref"].split("/")
            target = root["$defs" if section == "$defs" else "components"]
            target = target[name] if section == "$defs" else target["schemas"][name]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return resolve({**target, **rest}, root)
        return {k: resolve(v, root) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [resolve(v, root) for v in schema]
    return schema


def titles(node: Any, in_properties: bool = False) -> int:
    if isinstance(node, dict):
        own = 0 if in_properties else int("title" in node)
        return own + sum(titles(v, k == "properties") for k, v in node.items())
    if isinstance(node, list):
        return sum(titles(v) for v in node)
    return 0


async def mcp_listing(settings: Settings) -> dict[str, Any]:
    server = build_mcp(shared_runtime(RuntimeHandle(None)), None, surface(settings))  # type: ignore[arg-type]
    async with Client(server) as client:
        return {t.name: t.model_dump(by_alias=True, exclude_none=True) for t in (await client.list_tools()).tools}


@pytest.fixture(scope="module")
def seven_texts():
    """A server whose settings limit calls to 7 texts of 300 characters and 9 documents."""
    settings = Settings(max_texts=7, max_chars=300, max_documents=9)
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield settings, client


@pytest.mark.anyio
async def test_mcp_and_openapi_publish_one_schema_per_tool_with_the_settings_limits(seven_texts):
    settings, client = seven_texts
    listed = await mcp_listing(settings)
    doc = client.get("/openapi.json").json()
    http_tools = {t["name"]: t for t in client.get("/v1/tools").json()["tools"]}
    assert set(listed) == set(http_tools) == {d.name for d in declarations()}
    for name, tool in listed.items():
        body = doc["paths"][f"/v1/tools/{name}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        mcp_schema = resolve(tool["inputSchema"], tool["inputSchema"])
        assert resolve(body, doc) == mcp_schema, name
        assert resolve(http_tools[name]["input_schema"], http_tools[name]["input_schema"]) == mcp_schema, name
        assert http_tools[name]["description"] == tool["description"]
        response = doc["paths"][f"/v1/tools/{name}"]["post"]["responses"]["200"]["content"]["application/json"]
        assert resolve(response["schema"], doc) == resolve(tool["outputSchema"], tool["outputSchema"]), name
        # The settings' limits, and no stale default, in what an agent reads
        assert "512" not in tool["description"] and "100,000" not in tool["description"], name
    texts = resolve(listed["embed"]["inputSchema"], listed["embed"]["inputSchema"])["properties"]["texts"]
    assert texts == {"type": ["string", "array"], "maxLength": 300, "items": {"type": "string", "maxLength": 300},
                     "minItems": 1, "maxItems": 7}
    assert "7 texts" in listed["embed"]["description"] and "300 characters" in listed["embed"]["description"]
    documents = listed["rerank"]["inputSchema"]["properties"]["documents"]
    assert documents["maxItems"] == 9 and "9 documents" in listed["rerank"]["description"]
    for name in ("extract_entities", "classify", "index_documents", "build_ontology"):
        assert '"maxItems": 7' in json.dumps(listed[name]["inputSchema"]), name


def test_one_validator_on_both_surfaces(seven_texts):
    """The settings' limit is the answer on HTTP (413) and MCP (InputTooLong) alike, from the one validator."""
    _, client = seven_texts
    eight = {"texts": ["a"] * 8}
    answer = client.post("/v1/tools/embed", json=eight)
    assert answer.status_code == 413
    assert answer.json()["error"]["message"] == "texts has 8 items; the limit is 7 per call: split the call"
    long = client.post("/v1/tools/rerank", json={"query": "q" * 301, "documents": ["a"]})
    assert long.status_code == 413 and "query has 301 characters; the limit is 300" in long.text
    bad = client.post("/v1/tools/classify", json={"texts": "a", "labels": ["x"], "taxonomy": ["A > B"]})
    assert bad.status_code == 422 and "give labels or taxonomy, not both" in bad.text


@pytest.mark.anyio
async def test_mcp_refuses_with_the_same_words(surface_catalog):
    from sie_mcp.mcp_server import owned_runtime
    from sie_mcp.runtime import build_runtime

    settings = Settings(catalog=surface_catalog, default_ner_model="tiny-ner", max_texts=7)
    server = build_mcp(owned_runtime(build_runtime(settings), []), None, surface(settings))
    async with Client(server) as client:
        result = await client.call_tool("embed", {"texts": ["a"] * 8})
    assert result.is_error
    assert result.content[0].text == "InputTooLong: texts has 8 items; the limit is 7 per call: split the call"


@pytest.mark.anyio
async def test_the_tool_list_fits_its_budget_and_carries_no_titles():
    listed = await mcp_listing(Settings())
    cost = {name: len(t["description"]) + len(json.dumps(t["inputSchema"], separators=(",", ":")))
            for name, t in listed.items()}
    assert sum(cost.values()) <= TOOL_LIST_BUDGET, cost
    assert sum(cost.values()) == surface().listing_cost()
    for name, tool in listed.items():
        assert titles(tool["inputSchema"]) == 0, name
        assert tool.get("title"), name  # the tool's own display title stays
        # Each description says what comes back or when to call it, and the limits where there are any
        annotations = tool["annotations"]
        assert {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} <= set(annotations), name


def test_the_declared_annotations_are_true():
    by_name = {d.name: d.annotations for d in declarations()}
    writes = {"index_documents", "delete_collection", "build_ontology"}
    for name, a in by_name.items():
        assert a.read_only_hint is (name not in writes), name
        assert a.destructive_hint is (name == "delete_collection"), name
        assert a.open_world_hint is False, name  # nothing reaches outside the server
    assert by_name["build_ontology"].idempotent_hint is False  # without `graph`, each call makes a new graph
    assert by_name["search"].idempotent_hint is False  # collections change under it


def test_tools_selects_names_and_groups_and_refuses_unknown_names():
    declared = declarations()
    assert [d.name for d in select(["search", "index_documents"], declared)] == ["index_documents", "search"]
    retrieval = [d.name for d in select(["retrieval"], declared)]
    assert {"index_documents", "search", "list_collections", "delete_collection"} <= set(retrieval)
    assert "build_ontology" not in retrieval
    assert select([], declared) == declared == select(["all"], declared)
    with pytest.raises(ValueError) as refused:
        select(["serch"], declared)
    assert "'serch'" in str(refused.value) and "search" in str(refused.value) and "graphs" in str(refused.value)


def test_declaring_the_tools_imports_no_torch():
    """stdio answers `initialize` before torch is imported: the declarations (and what they import) stay light."""
    code = "import sys; from sie_mcp.declare import surface; surface(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_an_unknown_tool_name_stops_the_server_at_startup(tmp_path):
    out = subprocess.run([SIE, "serve", "--tools", "search,nope"], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert "unknown tool or group 'nope'" in out.stderr and "index_documents" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.anyio
async def test_a_subset_on_mcp_and_http_alike(surface_catalog, tmp_path):
    """A real server with `--tools search,index_documents,graphs`: MCP tools/list and /v1/tools list exactly
    those, the other tools' routes (and the compatible routes of tools left out) answer 404."""
    with serve(surface_catalog, tmp_path, "--tools", "search,index_documents,graphs",
               "--data-dir", str(tmp_path / "data")) as s:
        async with Client(f"{s.url}/mcp") as client:
            mcp_names = {t.name for t in (await client.list_tools()).tools}
            instructions = client.initialize_result.instructions if hasattr(client, "initialize_result") else None
        http_names = {t["name"] for t in httpx.get(f"{s.url}/v1/tools").json()["tools"]}
        expected = {"search", "index_documents", "build_ontology", "graph_search", "graph_neighbors", "graph_path",
                    "graph_subgraph", "list_models", "extract_entities", "extract_relations"}  # what builds them too
        assert mcp_names == http_names == expected
        for path in ("/v1/tools/embed", "/v1/tools/classify", "/v1/embeddings", "/v1/rerank"):
            answer = httpx.post(f"{s.url}{path}", json={"texts": ["a"], "input": "a", "query": "a", "documents": ["a"]})
            assert answer.status_code == 404, path
        assert "embed" not in httpx.get(f"{s.url}/openapi.json").text.split('"paths"')[1].split('"components"')[0]
        ok = httpx.post(f"{s.url}/v1/tools/index_documents", json={"collection": "docs", "documents": ["a cat"]})
        assert ok.status_code == 200, ok.text
    if instructions is not None:
        assert "embed" not in re.findall(r"\w+", instructions)


def test_the_readme_tool_table_is_generated_from_the_declarations():
    text = README.read_text()
    start, end = "<!-- tools table: generated by tests/test_declarations.py -->", "<!-- end of tools table -->"
    assert start in text and end in text
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == readme_table(surface()), "README tool table is stale: paste readme_table(surface())"
