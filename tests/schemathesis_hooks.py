"""schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS): the two rules a
JSON Schema cannot state, applied to the *positive* cases only, so that positive_data_acceptance holds the
server to everything else. Each rule is enforced by the tool with a 400 that says what to fix, and listed
under the operation's 400 in the OpenAPI document.

- Document ids unique within one call (index_documents, build_ontology): JSON Schema's uniqueItems compares
  whole items, not one field of them.
- A taxonomy (classify, build_ontology) without a category twice or a name twice on one path, names compared
  once stripped ('A ' is 'A'): the schema says uniqueItems, which compares the strings as sent.
- A taxonomy the tool takes (depth, blank names, repeats: the schema states lengths and counts only), and a
  `model` the tool takes (the schema does not list the catalog: an unknown id is a documented 404).
- Graph ids and collection names that exist: a drawn name almost never does (a documented 404), so half the
  positive cases of the graph and search tools name the graph and the collection the test made first
  (GRAPH, COLLECTION) and entities in it, and reach the code behind the 404.
- extract_entities `labels` for a fixed-type model: the types that model produces (known once it has loaded,
  not from the catalog the document is built from). The catalog of that test names two such models.
- classify with a `classify` model: an NLI model takes labels or a taxonomy, a classifier with its own labels
  neither (its loaded config tells which; the document allows both). The test's tiny-sentiment is the latter.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import schemathesis

# The test catalog's fixed-type NER models and their types (tests/conftest.py tiny-ner: PER, ORG, LOC;
# en_core_web_sm: OntoNotes). A label outside these is refused with the model's list.
FIXED_TYPES = {"tiny-ner": ["PER", "ORG", "LOC"], None: ["PER", "ORG", "LOC"],
               "en_core_web_sm": ["PERSON", "ORG", "GPE", "DATE", "MONEY"]}


GRAPH, ENTITIES, COLLECTION = "kg", ["Marie Curie", "Warsaw", "Paris"], "docs"


def _positive(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive and isinstance(case.body, dict)


def _unique_by_id(documents: list[Any], key: Any) -> list[Any]:
    seen, out = set(), []
    for d in documents:
        k = key(d)
        if k not in seen:
            seen.add(k)
            out.append(d)
    return out


@schemathesis.hook("map_case").apply_to(path="/v1/tools/index_documents")
def unique_collection_ids(context: Any, case: Any) -> Any:
    if _positive(case) and isinstance(case.body.get("documents"), list):
        def key(d: Any) -> str:  # tools/retrieval.py: an explicit id, else one derived from the text
            text = d if isinstance(d, str) else d.get("text", "")
            given = None if isinstance(d, str) else d.get("id")
            return given or hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        case.body["documents"] = _unique_by_id(case.body["documents"], key)
    return case


@schemathesis.hook("map_case").apply_to(path="/v1/tools/build_ontology")
def unique_graph_document_ids(context: Any, case: Any) -> Any:
    if _positive(case) and isinstance(case.body.get("documents"), list):
        def key(d: Any) -> str:  # tools/ontology.py: str(id), else one derived from the text
            doc_id = d.get("id")
            return str(doc_id) if doc_id not in (None, "") else "doc-" + hashlib.sha1(
                d.get("text", "").encode("utf-8", "surrogatepass")).hexdigest()[:12]
        case.body["documents"] = _unique_by_id(case.body["documents"], key)
    return case


@schemathesis.hook("map_case").apply_to(path="/v1/tools/extract_entities")
def labels_the_model_knows(context: Any, case: Any) -> Any:
    model = case.body.get("model") if isinstance(case.body, dict) else None
    labels = case.body.get("labels") if isinstance(case.body, dict) else None
    if _positive(case) and model in FIXED_TYPES and isinstance(labels, list) and labels:
        known = FIXED_TYPES[model]
        case.body["labels"] = [known[i % len(known)] for i in range(len(labels))]
    return case


def _names(path: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in path.partition("|")[0].split(">"))


MAX_DEPTH = 16  # the server's --max-taxonomy-depth (its default)


def _clean_paths(paths: list[Any]) -> list[Any]:
    """Paths the tool takes: non-blank names, within the depth, each path once (the schema states lengths and
    counts only: sie_mcp/tooldefs/_types.py Taxonomy)."""
    seen, out = set(), []
    for path in paths:
        names = _names(path) if isinstance(path, str) else None
        if names is not None and names not in seen and all(names) and len(names) <= MAX_DEPTH \
                and ">" not in path.partition("|")[2]:
            seen.add(names)
            out.append(path)
    return out or ["A > B"]


def _clean_tree(tree: Any, depth: int = 1) -> Any:
    """A nested object the tool takes: non-blank names, each once per level, values objects, lists of names,
    null or "", within the depth."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, child in tree.items():
            name = key.strip()
            if not name or name in {k.strip() for k in out}:
                continue
            out[key] = _clean_tree(child, depth + 1) if depth < MAX_DEPTH else None
        return out
    if isinstance(tree, list):
        names = [x for i, x in enumerate(tree) if isinstance(x, str) and x.strip()
                 and x.strip() not in {y.strip() for y in tree[:i] if isinstance(y, str)}]
        return names
    return tree if tree in (None, "") else None


@schemathesis.hook("map_case").apply_to(path="/v1/tools/classify").apply_to(path="/v1/tools/build_ontology")
def taxonomy_without_repeats(context: Any, case: Any) -> Any:
    taxonomy = case.body.get("taxonomy") if isinstance(case.body, dict) else None
    if _positive(case) and isinstance(taxonomy, list):
        case.body["taxonomy"] = _clean_paths(taxonomy)
    elif _positive(case) and isinstance(taxonomy, dict):
        case.body["taxonomy"] = _clean_tree(taxonomy) or {"A": None}
    elif _positive(case) and isinstance(taxonomy, str):  # a registered taxonomy: the test registers none
        case.body["taxonomy"] = ["A > B"]
    return case


# The models each tool takes in the test's catalog (the schema does not list them: `model` is a list_models id,
# and an unknown one is a documented 404). Half the positive cases name one, so they reach the model's code.
TOOL_MODELS = {"embed": ["all-MiniLM-L6-v2", "splade-tiny", "tiny-colbert"], "rerank": ["tiny-reranker"],
               "extract_entities": ["tiny-ner", "en_core_web_sm"], "classify": ["all-MiniLM-L6-v2", "tiny-sentiment"],
               "index_documents": ["all-MiniLM-L6-v2"], "build_ontology": ["en_core_web_sm"]}


CATALOG_MODELS = {m for models in TOOL_MODELS.values() for m in models} | {"tiny-sentiment", "tiny-ner"}


@schemathesis.hook("map_case").apply_to(path_regex="^/v1/tools/")
def a_model_the_tool_takes(context: Any, case: Any) -> Any:
    """A model of another task is a documented 400; an unknown one a 404. Half the positive cases name a model
    the tool takes, and none names a model of another task (the test catalog has no GLiNER2 model for
    extract and extract_relations: those keep their default, which this catalog lacks: 404)."""
    tool = case.operation.path.rsplit("/", 1)[-1]
    if not _positive(case) or "model" not in case.body:
        return case
    rng = random.Random(repr(sorted(case.body.items(), key=repr)))
    if tool in TOOL_MODELS and (rng.random() < 0.5 or case.body["model"] in CATALOG_MODELS):
        case.body["model"] = rng.choice(TOOL_MODELS[tool])
    elif case.body["model"] in CATALOG_MODELS:
        case.body["model"] = None
    return case


@schemathesis.hook("map_case").apply_to(path="/v1/tools/extract").apply_to(path="/v1/tools/extract_relations") \
    .apply_to(path="/v1/tools/build_ontology")
def names_the_parser_takes(context: Any, case: Any) -> Any:
    """GLiNER2's names (and a graph build's relation labels): non-blank relation types and structure names,
    field specs in its syntax (name, name::str, name::[a|b]): the tool's 400 names what breaks them
    (tools/gliner2.py)."""
    if not _positive(case):
        return case
    if isinstance(case.body.get("relations"), list):
        case.body["relations"] = [r for r in case.body["relations"] if isinstance(r, str) and r.strip()] or ["founded"]
    if isinstance(case.body.get("schema"), dict):
        case.body["schema"] = {(k if k.strip() else f"s{i}"): [f"f{j}" for j in range(len(v) or 1)]
                               for i, (k, v) in enumerate(case.body["schema"].items()) if isinstance(v, list)} \
            or {"deal": ["buyer"]}
    return case


@schemathesis.hook("map_case").apply_to(path="/v1/tools/classify")
def labels_or_taxonomy(context: Any, case: Any) -> Any:
    """A classify call names labels or a taxonomy unless its model has its own labels; a re-scoring model
    walks a beam (the tool's rules, 400s that say so)."""
    if _positive(case) and case.body.get("labels") is None and case.body.get("taxonomy") is None \
            and case.body.get("model") not in OWN_LABELS:
        case.body["labels"] = ["a", "b"]
    if _positive(case):
        case.body.pop("rescore_model", None)
    return case


@schemathesis.hook("map_case").apply_to(path_regex="^/v1/tools/graph_")
def existing_graph(context: Any, case: Any) -> Any:
    if _positive(case):
        rng = random.Random(repr(sorted(case.body.items(), key=repr)))
        if rng.random() < 0.5:
            case.body["graph"] = GRAPH
            for name in ("entity", "source", "target"):
                if name in case.body and rng.random() < 0.7:
                    case.body[name] = rng.choice(ENTITIES)
    return case


@schemathesis.hook("map_case").apply_to(path="/v1/tools/search")
def existing_collection(context: Any, case: Any) -> Any:
    if _positive(case) and random.Random(repr(sorted(case.body.items(), key=repr))).random() < 0.5:
        case.body["collection"] = COLLECTION
    return case


OWN_LABELS = {"tiny-sentiment"}  # tests/conftest.py: a classifier into negative/neutral/positive


@schemathesis.hook("map_case").apply_to(path="/v1/tools/classify")
def own_label_classifier(context: Any, case: Any) -> Any:
    if _positive(case) and case.body.get("model") in OWN_LABELS:
        case.body.pop("labels", None)
        case.body.pop("taxonomy", None)
    return case
