"""Knowledge-graph quality: typed-relation recall and precision on our facts set, and the shape of a graph of
real news.

    python bench/bench_kg_quality.py [--facts tests/data/kg_facts.jsonl] [--news PATH] [--news-docs 300]
                                     [--sample-out typed_sample.jsonl] [--model MODEL --labels a,b,c]

Facts set (tests/data/kg_facts.jsonl: short documents, each with the facts it states as subject, relation,
object and the construction that states them): every document is parsed with the default parser, extracted
(ontology.graph.extract) and its typed edges compared with the facts, by normalised names:
  recall     facts whose typed edge (same direction, same relation) was found;
  pair recall facts whose two entities some typed edge joins (either way, any relation);
  precision  typed edges that are one of the document's facts.
Hits per construction, and every miss and every wrong edge, are listed.

News (`--news`: gensim's lee_background.cor, one document per line; by default read from an installed gensim's
test data if there is one): the first `--news-docs` documents are built into one graph with the tools' own
build_ontology (database store in a temp dir): entity and edge counts and the typed share, under the graph's
co-occurrence (neighbouring names) and under the first definition (every pair of entities in a sentence,
counted from the same graph's mentions); `--sample-out`
writes 50 typed edges chosen at random (seed 0) with their sentences for judging by hand.
Markdown on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_facts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _key(name: str) -> str:
    from ontology.resolution import normalize

    return normalize(name)


def score(docs: list[dict], records: list) -> dict:
    """Compare each document's typed edges with its facts."""
    found_facts = 0
    found_pairs = 0
    total_facts = 0
    typed_edges = 0
    right_edges = 0
    by_construction: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_pattern: Counter[str] = Counter()
    right_by_pattern: Counter[str] = Counter()
    misses, wrong = [], []
    for doc, rec in zip(docs, records, strict=True):
        edges = {}
        for _, st, _, tt, rel, kind, ev in rec.relations:
            if kind == "typed":
                edges[(_key(st), rel, _key(tt))] = ev.get("pattern", "")
        gold = {(_key(f["subject"]), f["relation"], _key(f["object"])) for f in doc["facts"]}
        for f in doc["facts"]:
            total_facts += 1
            k = (_key(f["subject"]), f["relation"], _key(f["object"]))
            construction = f["construction"].split("+")
            hit = k in edges
            pair = any({a, b} == {k[0], k[2]} for a, _, b in edges)
            found_facts += hit
            found_pairs += pair
            for c in construction:
                by_construction[c][0] += hit
                by_construction[c][1] += 1
            if not hit:
                misses.append(f"{doc['id']}: {f['subject']} -[{f['relation']}]-> {f['object']} ({f['construction']})")
        for k, pattern in edges.items():
            typed_edges += 1
            by_pattern[pattern] += 1
            if k in gold:
                right_edges += 1
                right_by_pattern[pattern] += 1
            else:
                wrong.append(f"{doc['id']}: {k[0]} -[{k[1]}]-> {k[2]} ({pattern})")
    return {"facts": total_facts, "recall": found_facts / max(total_facts, 1),
            "pair_recall": found_pairs / max(total_facts, 1), "precision": right_edges / max(typed_edges, 1),
            "typed_edges": typed_edges, "found": found_facts, "right": right_edges,
            "by_construction": dict(by_construction), "by_pattern": dict(by_pattern),
            "right_by_pattern": dict(right_by_pattern), "misses": misses, "wrong": wrong}


async def extract_all(texts: list[tuple[str, str]], model: str | None, labels: list[str] | None) -> list:
    from engine.catalog import Catalog
    from engine.engine import Engine
    from ontology.graph import extract
    from tools.ontology import to_parsed, wanted_types
    from tools.parse import DEFAULT_PARSE_MODEL, parse

    engine = Engine(Catalog.default())
    await engine.start()
    try:
        parses = await parse(engine, model or DEFAULT_PARSE_MODEL, [t for _, t in texts])
    finally:
        await engine.shutdown()
    types = wanted_types(labels)
    return [extract(to_parsed(doc_id, text, [(0, p)]), allowed=types) for (doc_id, text), p in
            zip(texts, parses, strict=True)]


def find_news() -> Path | None:
    try:
        import gensim  # noqa: F401 - only its test data is read
    except ImportError:
        return None
    import gensim.test

    p = Path(gensim.test.__file__).parent / "test_data" / "lee_background.cor"
    return p if p.exists() else None


async def build_news(lines: list[str], sample_out: Path | None) -> dict:
    from engine.catalog import Catalog
    from engine.engine import Engine
    from ontology.store import GraphStore
    from tools.context import ToolContext
    from tools.ontology import GraphService, build_ontology

    engine = Engine(Catalog.default())
    await engine.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = GraphStore(Path(tmp))
            ctx = ToolContext(engine, graphs=GraphService(store))
            docs = [{"id": f"lee{i:03d}", "text": t} for i, t in enumerate(lines)]
            for b in range(0, len(docs), 64):
                await build_ontology(ctx, documents=docs[b:b + 64], graph="news")
            kg = store.load("news")
            entity = {(label, text): eid for label, text, eid in store.db.all(
                "SELECT label, text, entity FROM forms WHERE graph = ?", ("news",))}
            store.close()
    finally:
        await engine.shutdown()
    nodes, edges = kg.summary_counts()
    typed = [(u, v, k, d) for u, v, k, d in kg.graph.edges(keys=True, data=True) if d["kind"] == "typed"]
    co = sum(1 for *_, d in kg.graph.edges(keys=True, data=True) if d["kind"] == "co-occurrence")
    every_pair = sentence_pairs(kg, entity)
    relations = Counter(k for *_, k, _ in typed)
    if sample_out is not None:
        rng = random.Random(0)
        sample = rng.sample(typed, min(50, len(typed)))
        with sample_out.open("w", encoding="utf-8") as f:
            for u, v, k, d in sample:
                ev = d["evidence"][0]
                f.write(json.dumps({"source": kg.graph.nodes[u]["label"], "relation": k,
                                    "target": kg.graph.nodes[v]["label"], "pattern": ev.get("pattern"),
                                    "sentence": ev["sentence"], "correct": None}, ensure_ascii=False) + "\n")
    return {"documents": len(kg.records), "entities": nodes, "edges": edges, "typed": len(typed), "co": co,
            "typed_share": len(typed) / max(edges, 1), "every_pair": every_pair,
            "typed_share_every_pair": len(typed) / max(len(typed) + every_pair, 1),
            "relations": relations.most_common(15)}


def sentence_pairs(kg, entity: dict[tuple[str, str], str]) -> int:
    """How many co-occurrence edges the first definition (every pair of entities in a sentence) gives this graph:
    distinct pairs of entity ids named in one sentence, counted from the records' mentions (`entity`: (label,
    surface text) -> entity id, as the store resolved them)."""
    pairs = set()
    for r in kg.records.values():
        by_sentence = defaultdict(set)
        for label, text, _, _, s in r.mentions:
            by_sentence[s].add(entity[(label, text)])
        for ids in by_sentence.values():
            ids = sorted(ids)
            pairs.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1:])
    return len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facts", type=Path, default=ROOT / "tests" / "data" / "kg_facts.jsonl")
    ap.add_argument("--news", type=Path, default=None, help="lee_background.cor (default: gensim's, if installed)")
    ap.add_argument("--news-docs", type=int, default=300)
    ap.add_argument("--no-news", action="store_true")
    ap.add_argument("--sample-out", type=Path, default=None)
    ap.add_argument("--model", default=None, help="the parser/entity model (default: spaCy en_core_web_sm)")
    ap.add_argument("--labels", default=None, help="comma-separated entity labels (with a zero-shot model)")
    args = ap.parse_args()
    docs = load_facts(args.facts)
    labels = args.labels.split(",") if args.labels else None
    records = asyncio.run(extract_all([(d["id"], d["text"]) for d in docs], args.model, labels))
    s = score(docs, records)
    print(f"## Typed relations on {args.facts.name}: {len(docs)} documents, {s['facts']} facts\n")
    print("| recall | pair recall | precision | typed edges |\n|---|---|---|---|")
    print(f"| {s['recall']:.1%} ({s['found']}/{s['facts']}) | {s['pair_recall']:.1%} | "
          f"{s['precision']:.1%} ({s['right']}/{s['typed_edges']}) | {s['typed_edges']} |\n")
    print("| construction | hits |\n|---|---|")
    for c, (hit, n) in sorted(s["by_construction"].items()):
        print(f"| {c} | {hit}/{n} |")
    print("\n| pattern (edges found) | right / edges |\n|---|---|")
    for p, n in sorted(s["by_pattern"].items()):
        print(f"| {p} | {s['right_by_pattern'].get(p, 0)}/{n} |")
    print("\nMissed facts:\n" + "\n".join(f"- {m}" for m in s["misses"]) if s["misses"] else "\nNo fact missed.")
    print("\nEdges that are no fact of the document:\n" + "\n".join(f"- {w}" for w in s["wrong"])
          if s["wrong"] else "\nNo wrong edge.")
    if args.no_news:
        return
    news = args.news or find_news()
    if news is None:
        print("\n(news corpus skipped: pass --news lee_background.cor, or install gensim in a bench environment)")
        return
    lines = [line.strip() for line in news.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip()][:args.news_docs]
    n = asyncio.run(build_news(lines, args.sample_out))
    print(f"\n## News: {n['documents']} documents of {news.name}\n")
    print("| co-occurrence | entities | edges | typed edges | co-occurrence edges | typed share |\n|---|---|---|---|---|---|")
    print(f"| neighbouring names (the graph's) | {n['entities']} | {n['edges']} | {n['typed']} | {n['co']} | "
          f"{n['typed_share']:.1%} |")
    print(f"| every pair in a sentence (the first definition) | {n['entities']} | {n['typed'] + n['every_pair']} | "
          f"{n['typed']} | {n['every_pair']} | {n['typed_share_every_pair']:.1%} |\n")
    print("Most frequent typed relations: " + ", ".join(f"{k} {c}" for k, c in n["relations"]))
    if args.sample_out:
        print(f"\n50 typed edges to judge by hand: {args.sample_out} (fill `correct` with true/false)")


if __name__ == "__main__":
    main()
