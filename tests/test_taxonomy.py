"""Taxonomies: loading (files and inline, errors with line numbers), the beam walk on a constructed deep case,
the label-vector cache proven by counting the sequences the engine computes, and the shipped example data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.pool import PoolConfig
from tools.classify import beam_walk, classify
from tools.context import ToolContext
from tools.taxonomy import TaxonomyError, TaxonomyStore, load_taxonomy_file, parse_taxonomy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "taxonomy"


# --- loading -------------------------------------------------------------------------------------------

def test_text_file_with_comments_blank_lines_and_descriptions(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# products\n\nElectronics > Computers > Laptops | portable computers\n"
                 "Electronics > Phones\n  Food > Fruit > Apples  \n")
    tree = load_taxonomy_file(f)
    assert [n.path for n in tree.leaves] == [("Electronics", "Phones"), ("Electronics", "Computers", "Laptops"),
                                             ("Food", "Fruit", "Apples")]
    laptops = next(n for n in tree.nodes if n.name == "Laptops")
    assert laptops.text == "Electronics > Computers > Laptops: portable computers"
    assert len(tree.nodes) == 7 and tree.depth == 3
    assert [len(n.path) for n in tree.nodes] == sorted(len(n.path) for n in tree.nodes)  # parents first


def test_malformed_lines_are_reported_with_line_numbers(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("A > B\nA >  > C\nok > fine\nD >\n")
    with pytest.raises(TaxonomyError) as e:
        load_taxonomy_file(f)
    assert "line 2: empty category name" in str(e.value) and "line 4: empty category name" in str(e.value)
    assert "line 1" not in str(e.value) and "line 3" not in str(e.value)


def test_duplicates_are_rejected_and_a_name_may_repeat_at_another_depth(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("A > B\nC > D\nA > B\nX > Y > X\n")
    with pytest.raises(TaxonomyError) as e:
        load_taxonomy_file(f)
    assert "line 3: duplicate of line 1 (A > B)" in str(e.value)
    assert "line 4" not in str(e.value)  # X > Y > X: three categories, identified by their paths
    tree = parse_taxonomy(["Food > Snacks > Food", "Food > Fruit"])
    assert [n.path for n in tree.leaves] == [("Food", "Fruit"), ("Food", "Snacks", "Food")]
    nested = parse_taxonomy({"Food": {"Snacks": ["Food", "Chips"]}})
    assert ("Food", "Snacks", "Food") in [n.path for n in nested.leaves]


def test_parent_pointers_build_paths_and_name_a_cycle(tmp_path):
    f = tmp_path / "t.tsv"
    f.write_text("# category<TAB>parent\nElectronics\t\nLaptops\tComputers\nComputers\tElectronics\n")
    tree = load_taxonomy_file(f)
    assert [n.path for n in tree.leaves] == [("Electronics", "Computers", "Laptops")]
    f.write_text("A\tC\nB\tA\nC\tB\nD\t\n")
    with pytest.raises(TaxonomyError) as e:
        load_taxonomy_file(f)
    assert "cycle: " in str(e.value) and "lines" not in str(e.value)
    assert {"A", "B", "C"} <= set(str(e.value).split("cycle: ")[1].split(" (")[0].split(" > "))
    f.write_text("A\tNope\n")
    with pytest.raises(TaxonomyError, match="parent 'Nope' of 'A' is not a category"):
        load_taxonomy_file(f)
    j = tmp_path / "t.json"
    j.write_text('{"A": {"B": []}, "A": {"C": []}}')
    with pytest.raises(TaxonomyError, match="duplicate key"):
        load_taxonomy_file(j)


def test_json_files_nested_or_paths(tmp_path):
    j = tmp_path / "t.json"
    j.write_text(json.dumps({"Food": {"Fruit": ["Apples", "Pears"]}, "Sports": {}}))
    assert {n.path for n in load_taxonomy_file(j).leaves} == {("Food", "Fruit", "Apples"), ("Food", "Fruit", "Pears"),
                                                              ("Sports",)}
    j.write_text(json.dumps(["A > B", "A > C"]))
    assert len(load_taxonomy_file(j).nodes) == 3


def test_empty_and_unknown_format_and_inline_errors(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# nothing\n\n")
    with pytest.raises(TaxonomyError, match="taxonomy is empty"):
        load_taxonomy_file(f)
    with pytest.raises(TaxonomyError, match=r"unknown taxonomy file format '.csv'; use .txt"):
        load_taxonomy_file(tmp_path / "t.csv")
    with pytest.raises(TaxonomyError, match=r"taxonomy\[1\]: empty path"):
        parse_taxonomy(["A > B", " "])
    with pytest.raises(TaxonomyError, match="taxonomy is empty"):
        parse_taxonomy({})
    with pytest.raises(TaxonomyError, match="must be a list of paths"):
        parse_taxonomy(42)


def test_registered_taxonomies_load_at_start_and_unknown_names_list_them(tmp_path):
    f = tmp_path / "shop.txt"
    f.write_text("A > B\n")
    store = TaxonomyStore.from_specs([f"shop={f}"])
    assert store.get("shop").leaves[0].path == ("A", "B")
    with pytest.raises(Exception, match="unknown taxonomy 'nope'; registered: shop"):
        store.get("nope")
    with pytest.raises(ValueError, match="NAME=PATH"):
        TaxonomyStore.from_specs(["shop"])


def test_the_shipped_example_taxonomy_and_titles():
    tree = load_taxonomy_file(EXAMPLES / "products.txt")
    assert len(tree.nodes) >= 300 and tree.depth >= 3
    leaves = {n.path for n in tree.leaves}
    rows = [line.split("\t") for line in (EXAMPLES / "titles.tsv").read_text().splitlines()
            if line and not line.startswith("#")]
    assert len(rows) >= 150
    assert all(tuple(p.strip() for p in gold.split(">")) in leaves for _, gold in rows)


# --- the beam walk -------------------------------------------------------------------------------------

DEEP = ["Vehicles > Cars > Electric > Sedans > Compact", "Vehicles > Cars > Electric > Sedans > Luxury",
        "Vehicles > Cars > Electric > SUVs", "Vehicles > Cars > Petrol > Sedans", "Vehicles > Bikes > Road",
        "Vehicles > Bikes > Mountain", "Food > Fruit > Apples", "Food > Fruit > Pears", "Food > Bread",
        "Music > Jazz", "Music > Rock > Punk", "Music > Rock > Metal"]


@pytest.mark.anyio
async def test_beam_finds_the_true_deep_path_scoring_only_the_frontier():
    tree = parse_taxonomy(DEEP)
    truth = ("Vehicles", "Cars", "Electric", "Sedans", "Luxury")
    scored: list[str] = []

    async def scorer(text: int, nodes):  # rewards each step on the true path, a little noise elsewhere
        scored.extend(n.name for n in nodes)
        return [1.0 if n.path == truth[:len(n.path)] else 0.1 * len(n.name) % 0.7 for n in nodes]

    ranked = await beam_walk(tree.root, beam=1, top_k=3, scorer=scorer, text=0)
    assert ranked[0][0].path == truth
    # beam 1 expands one category per level: its children only (3 + 2 + 2 + 2 + 2), never the whole tree
    assert len(scored) == 11 < len(tree.nodes)
    assert "Apples" not in scored and "Punk" not in scored


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def ctx(minilm_dir):
    catalog = Catalog()
    catalog.add(CatalogEntry(id="all-MiniLM-L6-v2", source=f"path:{minilm_dir}", dtype="float32"))
    engine = Engine(catalog, PoolConfig(budget_bytes=1 << 30, host_budget_bytes=0))
    await engine.start()
    yield ToolContext(engine, taxonomies=TaxonomyStore())
    await engine.shutdown()


def _computed(engine: Engine) -> tuple[float, float]:
    """(batches, sequences) the model has computed so far."""
    hist = engine.metrics.batch_size.labels(model="all-MiniLM-L6-v2")
    count = next(s.value for m in hist.collect() for s in m.samples if s.name.endswith("_count"))
    return count, hist._sum.get()


@pytest.mark.anyio
async def test_label_vectors_are_computed_once_per_model_and_taxonomy(ctx):
    tree = parse_taxonomy(DEEP)
    b0, s0 = _computed(ctx.engine)
    first = await classify(ctx, "an electric luxury saloon car", taxonomy=DEEP, top_k=2)
    b1, s1 = _computed(ctx.engine)
    assert s1 - s0 == 1 + 2 * len(tree.nodes)  # the text, every category's path and name
    assert b1 - b0 == 1  # text and labels in one forward batch
    second = await classify(ctx, "an electric luxury saloon car", taxonomy=DEEP, top_k=2)
    b2, s2 = _computed(ctx.engine)
    assert s2 - s1 == 1 and b2 - b1 == 1  # cached: the text alone
    assert second.results == first.results and first.search == "flat"
    await classify(ctx, "punk rock", taxonomy=DEEP + ["Music > Rock > Grunge"])
    assert _computed(ctx.engine)[1] - s2 == 1 + 2 * (len(tree.nodes) + 1)  # new content: a new entry
    assert ctx.taxonomies.cache.hits >= 1


@pytest.mark.anyio
async def test_flat_and_beam_on_a_real_model_report_their_method_and_confidence(ctx):
    texts = ["an electric luxury saloon car", "crisp green pears", "heavy metal guitar riffs"]
    flat = await classify(ctx, texts, taxonomy=DEEP, top_k=2)
    beam = await classify(ctx, texts, taxonomy=DEEP, top_k=2, search="beam", beam=2)
    assert flat.search == "flat" and beam.search == "beam"
    for out in (flat, beam):
        assert [r[0].label for r in out.results] == ["Luxury", "Pears", "Metal"]
        assert all(abs(c - (r[0].score - r[1].score)) <= 1.01e-4 and c >= 0 for c, r in zip(out.confidence, out.results))
        assert all(round(s.score, 4) == s.score for r in out.results for s in r)
