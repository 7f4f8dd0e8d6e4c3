"""The OpenAPI document, made to say what the server does: each tool's route with its argument schema (the
schema MCP clients get, with this server's limits written in), its result schema, and every status a
route can answer with, all in the one error shape. `tests/test_schemathesis.py` holds the server to it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from sie_mcp.declare import Surface
from sie_mcp.settings import Settings

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


def _string(settings: Settings) -> dict[str, Any]:
    return {"type": "string", "maxLength": settings.max_chars}


def _component(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A declared schema as an OpenAPI component: its $defs hoisted, its refs pointing at them."""
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')
    schema = json.loads(text)
    components.update(schema.pop("$defs", {}))
    return schema


def document(app: FastAPI, settings: Settings, tools: Surface) -> dict[str, Any]:
    """The OpenAPI document (built once, then cached on the app): each exposed tool's declared argument and
    result schemas (sie_mcp/declare.py: the same schemas MCP lists), every status a route answers with."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for tool in tools:
        op = doc["paths"][f"/v1/tools/{tool.name}"]["post"]
        components[f"{tool.name}Arguments"] = _component(tool.input_schema, components)
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model=f"{tool.name}Arguments")}}}}
        components[f"{tool.name}Result"] = _component(tool.output_schema, components)
        op["responses"]["200"] = {"description": "The tool's structured result", "content": {
            "application/json": {"schema": {"$ref": REF.format(model=f"{tool.name}Result")}}}}
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
    # The compatible routes are not tools: their bodies are FastAPI's models, their limits the embed and rerank
    # tools' (checked there, 413), written into the document here.
    for path, model in (("/v1/embeddings", "EmbeddingsResponse"), ("/v1/rerank", "RerankResponse")):
        if path not in doc["paths"]:
            continue
        doc["paths"][path]["post"]["responses"]["200"] = {"description": "Success", "content": {
            "application/json": {"schema": {"$ref": REF.format(model=model)}}}}
        request = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        props = components[request.rsplit("/", 1)[1]]["properties"]
        if "input" in props:
            props["input"] = {"anyOf": [_string(settings), {"type": "array", "minItems": 1, "maxItems":
                                                            settings.max_texts, "items": _string(settings)}]}
        if "documents" in props:
            props["documents"]["maxItems"] = settings.max_documents
            props["query"]["maxLength"] = settings.max_chars
    _hoist(ErrorBody, components, "serialization")
    for generated in ("HTTPValidationError", "ValidationError"):  # FastAPI's {"detail"} shape: never answered
        components.pop(generated, None)
    app.openapi_schema = doc
    return doc
