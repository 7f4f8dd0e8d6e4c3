"""The OpenAPI document, made to say what the server does: each tool's route with its argument schema (the
schema MCP clients get, with this server's limits written in), its result schema, and every status a
route can answer with, all in the one error shape. `tests/test_schemathesis.py` holds the server to it.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from sie_mcp.settings import Settings
from sie_mcp.tool_surface import TOOLS, SurfaceTool
from tools.context import TOOL_TASKS

REF = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    type: str = Field(description="The error's name, e.g. InvalidInput, UnknownModel, Overloaded")
    message: str = Field(description="What went wrong and what to do (bounded; never echoes the input)")
    retry_after_s: float | None = Field(None, description="Overloaded: seconds to wait before retrying")
    details: list[dict[str, Any]] | None = Field(None, description="ValidationError: the first failing fields")


class ErrorBody(BaseModel):
    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Every status a JSON route can answer besides 200 (the guard's and the body reader's included).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid input (not JSON, lone surrogates, wrong task for the model, a document id twice in one "
                "call, a taxonomy category twice, labels a fixed-type NER model does not produce, …)"),
    401: _error("Bearer token missing or wrong (when the server has tokens)"),
    403: _error("Origin not allowed"),
    404: _error("Unknown model, tool, collection, graph, or entity in a graph"),
    408: _error("The request body did not arrive in time"),
    413: _error("A limit exceeded: texts per call, characters per text, documents, labels, body size"),
    415: _error("The body is not application/json"),
    421: _error("The Host header does not name this server"),
    422: _error("Arguments that fail the schema"),
    429: _error("Overloaded, or this client's limit of calls in flight or open sessions: retry after "
                "`Retry-After` seconds"),
    503: _error("Model failed to load (the operator must fix it), timeout, or shutting down"),
}
_GET_ERRORS = {k: v for k, v in ERRORS.items() if k in (401, 403, 421)}


class EmbeddingData(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingData]
    model: str
    usage: Usage


class RerankDocument(BaseModel):
    text: str


class RerankHit(BaseModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankResponse(BaseModel):
    model: str
    method: str
    results: list[RerankHit]


def _hoist(model: type[BaseModel], components: dict[str, Any], mode: Literal["validation", "serialization"],
           name: str | None = None) -> dict[str, Any]:
    """`model`'s JSON Schema into `components` ($defs hoisted, refs pointing there); returns a $ref to it."""
    schema = model.model_json_schema(mode=mode, ref_template=REF)
    components.update(schema.pop("$defs", {}))
    name = name or model.__name__
    components[name] = schema
    return {"$ref": REF.format(model=name)}


def _string(settings: Settings, min_length: int = 0, max_length: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "maxLength": max_length or settings.max_chars}
    if min_length:
        out["minLength"] = min_length
    return out


def _strings(settings: Settings, max_items: int, max_length: int | None = None, min_length: int = 0
             ) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": max_items,
            "items": _string(settings, min_length, max_length)}


# What Python's str.strip() removes (str.isspace), spelled out: regex `\s` differs between Python and the
# ECMA-262 patterns JSON Schema uses (\x1c-\x1f, \x85), and the tools strip names with str.strip().
SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK = rf"[^{SPACE}]"  # a name must contain a character that is not a space (tools strip names)


def _taxonomy_schemas(settings: Settings, schema: dict[str, Any]) -> dict[str, Any]:
    """A taxonomy: paths of non-blank names within the depth and length bounds, or a nested object whose values
    are objects, lists of names, null or "" (tools/taxonomy.py, tools/taxonomy_limits.py; the category count is
    checked by the server). A path twice (once its names are stripped) and a name twice on one path are
    refused too, which JSON Schema cannot say (a 400 that names them). Registers the recursive `TaxonomyTree` in `schema`'s $defs; returns the array and
    object alternatives."""
    depth = settings.max_taxonomy_depth
    segment = rf"[^>|]*[^{SPACE}>|][^>|]*"  # a name; ' | ' starts the category's description
    path = {"type": "string", "maxLength": settings.max_category_chars,
            "pattern": rf"^{segment}(>{segment}){{0,{depth - 1}}}(\|[^>]*)?$"}
    name = {"type": "string", "maxLength": settings.max_category_chars, "pattern": NON_BLANK}
    tree = {"type": "object", "propertyNames": name, "additionalProperties": {"anyOf": [
        {"$ref": REF.format(model="TaxonomyTree")}, {"type": "array", "items": name}, {"type": "null"},
        {"const": ""}]}}
    schema.setdefault("$defs", {})["TaxonomyTree"] = tree
    return {"paths": {"type": "array", "minItems": 1, "maxItems": settings.max_labels, "items": path,
                      "uniqueItems": True},
            "tree": {"$ref": REF.format(model="TaxonomyTree"), "minProperties": 1}}


def _exactly_one(a: str, b: str) -> list[dict[str, Any]]:
    """JSON Schema for "`a` or `b`, not both" where either may also be sent as null (read as absent)."""
    return [{"required": [a], "properties": {a: {"not": {"type": "null"}}, b: {"type": "null"}}},
            {"required": [b], "properties": {b: {"not": {"type": "null"}}, a: {"type": "null"}}}]


def _limited_arguments(tool: SurfaceTool, schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The tool's argument schema with the per-call limits of this server written in, and the rules between
    arguments that the tools enforce (exactly one of two, names that must not be blank) stated as JSON Schema."""
    schema = copy.deepcopy(schema)
    props = schema.get("properties", {})

    def keep(name: str, **replacement: Any) -> None:
        described = {k: v for k, v in props[name].items() if k in ("description", "title", "default")}
        props[name] = {**described, **replacement}

    nullable = [{"type": "null"}]
    if "texts" in props:
        keep("texts", anyOf=[_string(settings), _strings(settings, settings.max_texts)])
    if tool.name == "rerank":
        keep("query", **_string(settings, min_length=1))
        keep("documents", **_strings(settings, settings.max_documents))
    if tool.name == "classify":
        # Exactly one of labels and taxonomy (tools/classify.py); a rescore model re-scores a beam walk only.
        taxonomy = _taxonomy_schemas(settings, schema)
        keep("labels", anyOf=[_strings(settings, settings.max_labels), *nullable])
        keep("taxonomy", anyOf=[taxonomy["paths"], taxonomy["tree"], *nullable])
        schema["allOf"] = [{"anyOf": _exactly_one("labels", "taxonomy")}, {"anyOf": [
            {"properties": {"rescore_model": {"type": "null"}}},
            {"properties": {"search": {"enum": ["auto", "beam"]}}}]}]
    if tool.name == "build_ontology":
        # Exactly one of texts and documents (tools/ontology.py); documents need a text.
        taxonomy = _taxonomy_schemas(settings, schema)
        keep("texts", anyOf=[_string(settings), _strings(settings, settings.max_texts), *nullable])
        document = {"type": "object", "required": ["text"], "properties": {"text": _string(settings)}}
        keep("documents", anyOf=[{"type": "array", "minItems": 1, "maxItems": settings.max_texts,
                                  "items": document}, *nullable])
        keep("labels", anyOf=[{"type": "array", "items": {"type": "string", "pattern": NON_BLANK}}, *nullable])
        keep("taxonomy", anyOf=[taxonomy["paths"], taxonomy["tree"], *nullable])
        schema["anyOf"] = _exactly_one("texts", "documents")
    if tool.name in ("index_documents", "search"):
        # tools/retrieval.py, tools/vector_store.py: flat metadata; a filter of fields ANDed, each a value or
        # operators. Ids unique within a call: not expressible in JSON Schema (a 400 that says so).
        scalar = {"anyOf": [{"type": ["string", "boolean"]}, {"type": "integer", "minimum": -(2**63),
                                                              "maximum": 2**63 - 1}, {"not": {"type": "integer"},
                                                                                     "type": "number"}]}
        field_name = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^_$]"}
    if tool.name == "index_documents":
        document = {"type": "object", "required": ["text"], "additionalProperties": False, "properties": {
            "text": _string(settings), "id": {"type": ["string", "null"], "minLength": 1, "maxLength": 256},
            "metadata": {"anyOf": [{"type": "object", "propertyNames": field_name,
                                    "additionalProperties": scalar}, {"type": "null"}]}}}
        keep("documents", type="array", minItems=1, maxItems=settings.max_texts,
             items={"anyOf": [_string(settings), document]})
    if tool.name == "search":
        keep("query", **_string(settings), pattern=NON_BLANK)
        number = {"type": "number"}
        int64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
        # A list of one kind (Chroma compares within one type): strings, numbers, or booleans.
        one_kind = {"anyOf": [{"type": "array", "minItems": 1, "items": items} for items in (
            {"type": "string"}, {"anyOf": [int64, {"type": "number", "not": {"type": "integer"}}]},
            {"type": "boolean"})]}
        ops = {"type": "object", "additionalProperties": False, "properties": {
            "$eq": scalar, "$ne": scalar, "$gt": number, "$gte": number, "$lt": number, "$lte": number,
            "$in": one_kind, "$nin": one_kind}}
        keep("filter", anyOf=[{"type": "object", "propertyNames": field_name,
                               "additionalProperties": {"anyOf": [scalar, ops]}}, *nullable])
    if tool.name == "graph_search":
        keep("query", type="string", pattern=NON_BLANK)
    if tool.name == "extract_entities":
        keep("labels", anyOf=[{"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1,
                                                                            "maxLength": 100}},
                              *nullable])
    return schema


def _classify_rules(schema: dict[str, Any], catalog: Any, default_model: str) -> None:
    """classify's labels/taxonomy depend on the model's task (tools/classify.py): an embedding model needs
    exactly one of them; a `classify` model is an NLI model (exactly one) or a classifier with its own labels
    (neither), which only its loaded config tells, so the document allows both for those."""
    tasks = {"embed": _model_enum(catalog, {"embed"}), "classify": _model_enum(catalog, {"classify"})}
    try:
        default_task = catalog.get(default_model).task
    except Exception:  # noqa: BLE001 - a default the catalog lacks: every call without a model is a 404
        default_task = None
    neither = {"properties": {"labels": {"type": "null"}, "taxonomy": {"type": "null"}}}
    branches = []
    for task, names in tasks.items():
        if names or task == default_task:
            model = {"properties": {"model": {"enum": [*names, *([None, ""] if task == default_task else [])]}},
                     **({} if task == default_task else {"required": ["model"]})}  # absent: the default
            shapes = _exactly_one("labels", "taxonomy") + ([neither] if task == "classify" else [])
            branches.append({**model, "anyOf": shapes})
    schema["allOf"][0] = {"anyOf": branches}


def _ner_kind(entry: Any) -> str:
    """What an ner entry of the catalog is, before it loads: 'zero_shot' (GLiNER: labels required, threshold,
    nested, multi_label), 'parse' (spaCy: fixed types, no aggregation) or 'tokens' (token classification)."""
    return {"gliner": "zero_shot", "spacy": "parse"}.get(entry.runtime, "tokens")


def _entities_rules(schema: dict[str, Any], catalog: Any, default_model: str) -> None:
    """extract_entities' arguments depend on the kind of model (tools/entities.py): one alternative per kind
    present in the catalog, each naming its models (null: the server's default, of its kind)."""
    by_kind: dict[str, list[Any]] = {}
    for model_id in catalog.ids():
        entry = catalog.get(model_id)
        if entry.task == "ner":
            by_kind.setdefault(_ner_kind(entry), []).extend([entry.id, *([entry.hf_id] if entry.hf_id else [])])
    try:
        default_kind = _ner_kind(catalog.get(default_model))
    except Exception:  # noqa: BLE001 - a default the catalog lacks: every call without a model is a 404
        default_kind = None
    fixed_only = {"threshold": {"type": "null"}, "nested": {"const": False}, "multi_label": {"const": False}}
    rules = {"zero_shot": {"required": ["labels"],
                           "properties": {"labels": {"type": "array", "minItems": 1},
                                          "aggregation": {"type": "null"}}},
             "parse": {"properties": {**fixed_only, "aggregation": {"type": "null"}}},
             "tokens": {"properties": fixed_only}}
    branches = []
    for kind, names in by_kind.items():
        model = {"enum": [*names, *([None, ""] if kind == default_kind else [])]}
        rule = rules[kind]
        required = sorted({*rule.get("required", []), *([] if kind == default_kind else ["model"])})
        branches.append({**rule, "properties": {**rule["properties"], "model": model}, "required": required})
    if branches:
        schema["anyOf"] = branches


# Catalog tasks each route can run (tools.context.TOOL_TASKS, which the tools enforce): a model of another
# task is a 400, so the schema lists these only.
MODEL_TASKS = {**{tool: set(tasks) for tool, tasks in TOOL_TASKS.items()},
               "/v1/embeddings": {"embed"}, "/v1/rerank": set(TOOL_TASKS["rerank"])}


def _model_enum(catalog: Any, tasks: set[str]) -> list[str]:
    names = []
    for model_id in catalog.ids():
        entry = catalog.get(model_id)
        if entry.task in tasks:
            names += [entry.id, *([entry.hf_id] if entry.hf_id else [])]
    return names


def _set_model_enum(schema: dict[str, Any], names: list[str]) -> None:
    props = schema.get("properties", {})
    if "model" in props:
        described = {k: v for k, v in props["model"].items() if k in ("description", "title", "default")}
        # "" is read as no model, as null is (tools.context.tool_model: `model or default`).
        props["model"] = {**described, "anyOf": [{"type": "string", "enum": [*names, ""]}, {"type": "null"}]}


def document(app: FastAPI, settings: Settings, catalog: Any) -> dict[str, Any]:
    """The OpenAPI document (built once, then cached on the app). `catalog`: the models a `model` may name."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for tool in TOOLS.values():
        op = doc["paths"][f"/v1/tools/{tool.name}"]["post"]
        args = tool.metadata.arg_model.model_json_schema(ref_template=REF)
        components.update(args.pop("$defs", {}))
        limited = _limited_arguments(tool, args, settings)
        components.update(limited.pop("$defs", {}))
        if tool.name in MODEL_TASKS:
            _set_model_enum(limited, _model_enum(catalog, MODEL_TASKS[tool.name]))
        if tool.name == "extract_entities":
            _entities_rules(limited, catalog, settings.default_ner_model)
        if tool.name == "classify":
            _classify_rules(limited, catalog, settings.default_classify_model or settings.default_embed_model)
        if tool.name == "build_ontology":  # parse models: the spaCy pipelines
            _set_model_enum(limited, [n for m in catalog.ids() if catalog.get(m).runtime == "spacy"
                                      for n in [catalog.get(m).id, *filter(None, [catalog.get(m).hf_id])]])
        if tool.name == "classify":  # re-scoring models: cross-encoders and sequence classifiers (NLI)
            props = limited["properties"]
            names = _model_enum(catalog, {"rerank", "classify"})
            props["rescore_model"] = {**{k: v for k, v in props["rescore_model"].items() if k != "anyOf"},
                                      "anyOf": [{"type": "string", "enum": names}, {"type": "null"}]}
        components[f"{tool.name}Arguments"] = limited
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model=f"{tool.name}Arguments")}}}}
        result = tool.result_model
        op["responses"]["200"] = {"description": "The tool's structured result", "content": {
            "application/json": {"schema": _hoist(result, components, "serialization")}}}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            for status, spec in (ERRORS if method == "post" else _GET_ERRORS).items():
                responses[str(status)] = {"description": spec["description"], "content": {
                    "application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}}}
            if path == "/readyz":
                responses["503"] = {"description": "Not ready (models loading, or failed to load)",
                                    "content": {"application/json": {"schema": {"type": "object"}}}}
            if path == "/metrics":
                responses["200"] = {"description": "Prometheus text format", "content": {"text/plain": {
                    "schema": {"type": "string"}}}}
    for path, model in (("/v1/embeddings", "EmbeddingsResponse"), ("/v1/rerank", "RerankResponse")):
        doc["paths"][path]["post"]["responses"]["200"] = {"description": "Success", "content": {
            "application/json": {"schema": {"$ref": REF.format(model=model)}}}}
        request = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = components[request.rsplit("/", 1)[1]]
        _set_model_enum(body, _model_enum(catalog, MODEL_TASKS[path]))
        props = body["properties"]
        if "input" in props:
            props["input"] = {"anyOf": [_string(settings), _strings(settings, settings.max_texts)]}
        if "documents" in props:
            props["documents"]["maxItems"] = settings.max_documents
            props["query"]["maxLength"] = settings.max_chars
    _hoist(ErrorBody, components, "serialization")
    for generated in ("HTTPValidationError", "ValidationError"):  # FastAPI's {"detail"} shape: never answered
        components.pop(generated, None)
    app.openapi_schema = doc
    return doc
