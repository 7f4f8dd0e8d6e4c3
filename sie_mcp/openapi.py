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
    400: _error("Invalid input (not JSON, lone surrogates, wrong task for the model, …)"),
    401: _error("Bearer token missing or wrong (when the server has tokens)"),
    403: _error("Origin not allowed"),
    404: _error("Unknown model or tool"),
    408: _error("The request body did not arrive in time"),
    413: _error("A limit exceeded: texts per call, characters per text, documents, labels, body size"),
    415: _error("The body is not application/json"),
    421: _error("The Host header does not name this server"),
    422: _error("Arguments that fail the schema"),
    429: _error("Overloaded: retry after `Retry-After` seconds"),
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


def _limited_arguments(tool: SurfaceTool, schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The tool's argument schema with the per-call limits of this server written in."""
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
        # Exactly one of labels and taxonomy. A taxonomy: paths of non-blank names within the depth and length
        # bounds, or a nested object whose values are objects, lists of names, null or "" (tools/classify.py,
        # tools/taxonomy_limits.py; the category count is checked by the server).
        depth = settings.max_taxonomy_depth
        segment = r"[^>]*[^\s>][^>]*"
        path = {"type": "string", "maxLength": settings.max_category_chars,
                "pattern": rf"^{segment}(>{segment}){{0,{depth - 1}}}$"}
        name = {"type": "string", "maxLength": settings.max_category_chars}
        components_tree = {"type": "object", "propertyNames": name, "additionalProperties": {"anyOf": [
            {"$ref": REF.format(model="TaxonomyTree")}, {"type": "array", "items": name}, {"type": "null"},
            {"const": ""}]}}
        schema.setdefault("$defs", {})["TaxonomyTree"] = components_tree
        keep("labels", anyOf=[_strings(settings, settings.max_labels), *nullable])
        keep("taxonomy", anyOf=[{"type": "array", "minItems": 1, "maxItems": settings.max_labels, "items": path},
                                {"$ref": REF.format(model="TaxonomyTree"), "minProperties": 1}, *nullable])
        schema["anyOf"] = [
            {"required": ["labels"], "properties": {"labels": {"type": "array"}, "taxonomy": {"type": "null"}}},
            {"required": ["taxonomy"], "properties": {"taxonomy": {"type": ["array", "object"]},
                                                      "labels": {"type": "null"}}}]
    if tool.name == "extract_entities":
        keep("labels", anyOf=[{"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1,
                                                                            "maxLength": 100}},
                              *nullable])
    return schema


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
        props["model"] = {**described, "anyOf": [{"type": "string", "enum": names}, {"type": "null"}]}


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
