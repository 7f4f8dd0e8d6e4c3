"""The HTTP surface: MCP (streamable HTTP at /mcp) and a plain HTTP API on one FastAPI app.

Routes: GET /v1/tools, POST /v1/tools/{tool}, POST /v1/embeddings (OpenAI-compatible), POST /v1/rerank
(Cohere/Jina-style), GET /v1/models, GET /metrics, GET /healthz, GET /readyz, OpenAPI at /docs.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.engine import Engine
from engine.errors import EngineError, InvalidInput, UnsupportedTask
from sie_mcp import __version__, openapi
from sie_mcp.client_limits import ClientLimits
from sie_mcp.errors import argument_errors, install_handlers, problem, public_text, validation_problem
from sie_mcp.http_body import BodyReader, parsed_body
from sie_mcp.http_guard import Access, Guard, cors_origins
from sie_mcp.mcp_response_mode import mcp_routes
from sie_mcp.mcp_server import build_mcp, preload_in_background, shared_runtime
from sie_mcp.runtime import Runtime, RuntimeHandle, build_runtime, preload_models
from sie_mcp.settings import Settings
from sie_mcp.declare import BoundTool, surface
from sie_mcp.tooldefs._types import PositiveInt
from tools import wire
from tools.embed import embed as embed_tool
from tools.models import list_models
from tools.rerank import rerank as rerank_tool

log = logging.getLogger("sie_mcp")
# The OpenAI- and Cohere-compatible routes and the tool each one calls: served when that tool is (`--tools`).
COMPATIBLE_ROUTES = {"/v1/embeddings": "embed", "/v1/rerank": "rerank"}


class JSONBody(Response):
    """A JSON response written in one compiled pass by `tools.wire.dumps` (models, plain data, float32
    arrays): the stdlib encoder behind FastAPI's JSONResponse took several times longer on embedding
    results, event-loop time taken from the forward pass on a small machine."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return wire.dumps(content)


# --- request/response models of the OpenAI- and Cohere-compatible routes -------------------------------


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # `true` is not 1: no silent coercion of types

    input: str | Annotated[list[str], Field(min_length=1)] = Field(description="Text or texts to embed")
    model: str | None = Field(None, description="Model id (default: the server's embedding model)")
    dimensions: Annotated[PositiveInt | None, Field(strict=False, description="Matryoshka truncation")] = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


class RerankText(BaseModel):
    text: str


class RerankRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    query: str = Field(min_length=1)
    documents: list[str | RerankText] = Field(min_length=1, description="Strings, or objects with a 'text' field")
    model: str | None = None
    top_n: Annotated[PositiveInt | None, Field(strict=False)] = None
    return_documents: bool = True


def create_app(settings: Settings, runtime: Runtime | None = None, access: Access | None = None) -> FastAPI:
    """The app. Raises ValueError where the settings would expose it (sie_mcp/http_guard.py); `access`: those
    rules already resolved from `settings`."""
    access = access or Access.from_settings(settings)
    tools = surface(settings)  # ValueError for an unknown --tools name
    runtime = runtime or build_runtime(settings)
    engine: Engine = runtime.engine
    handle = RuntimeHandle(runtime)
    mcp = build_mcp(shared_runtime(handle), runtime.graphs.store if runtime.graphs is not None else None, tools)
    mcp_routes_, mcp_managers = mcp_routes(mcp, "/mcp", settings.stateless_http, settings.mcp_response,
                                           handle, settings.max_body_bytes, settings.mcp_fast_path,
                                           settings.max_sessions, settings.mcp_session_idle_s)
    state = {"ready": False, "preload_error": None}

    async def preload() -> None:
        state["preload_error"] = await preload_in_background(runtime, preload_models(settings))
        state["ready"] = state["preload_error"] is None

    async def drain() -> None:
        """Stop intake (/readyz 503, new calls ShuttingDown) and wait for accepted calls (sie_mcp.drain)."""
        pending = engine.scheduler.pending_requests
        if not await engine.scheduler.drain(settings.drain_timeout()):
            log.warning("drain timeout (%.0f s): %d calls still pending", settings.drain_timeout(),
                        engine.scheduler.pending_requests)
        else:
            log.info("drained: %d calls finished", pending)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await engine.start(serving=True)
        task = asyncio.create_task(preload())
        async with AsyncExitStack() as stack:
            for manager in mcp_managers:
                await stack.enter_async_context(manager.run())
            yield
        state["ready"] = False
        task.cancel()
        await engine.shutdown()  # finishes accepted work before the process exits

    app = FastAPI(title="sie-mcp", version=__version__, lifespan=lifespan,
                  description="Small specialised models as tools for LLM agents (MCP at /mcp).")
    app.router.routes.extend(mcp_routes_)
    # Outermost first: who may call (no body read), CORS only for configured origins, then the body.
    compatible = {path for path, tool in COMPATIBLE_ROUTES.items() if tool in tools}
    tool_paths = {f"/v1/tools/{name}" for name in tools.names() if name != "list_models"} | compatible

    def admission(path: str) -> EngineError | None:
        return engine.scheduler.admission_error() if path in tool_paths else None

    app.add_middleware(BodyReader, max_body_bytes=settings.max_body_bytes, read_timeout_s=settings.read_timeout_s,
                       admission=admission, jsonrpc_paths=frozenset({"/mcp"}))
    app.add_middleware(ClientLimits, max_calls=settings.max_client_calls, max_sessions=settings.max_client_sessions,
                       session_idle_s=settings.mcp_session_idle_s, counted=lambda p: p in tool_paths or p == "/mcp")
    if cors_origins(settings):
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins(settings), allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "mcp-protocol-version", "mcp-session-id"])
    app.add_middleware(Guard, access=access)
    app.state.runtime = runtime
    install_handlers(app)
    app.state.drain = drain

    # --- health and metrics ----------------------------------------------------------------------

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONBody:
        """Ready: default models loaded and the engine accepting work."""
        ok = state["ready"] and engine.scheduler.accepting
        status = "ready" if ok else "draining" if not engine.scheduler.accepting else "not ready"
        error = state["preload_error"]
        body = {"status": status, "preload_error": error and public_text(error)}
        return JSONBody(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus metrics (names documented in the README)."""
        return Response(engine.metrics.render(), media_type="text/plain; version=0.0.4")

    # --- tools -----------------------------------------------------------------------------------

    @app.get("/v1/tools", tags=["tools"])
    async def list_tools() -> dict:
        """Every tool with its JSON Schemas, also in the OpenAI function-calling shape."""
        listed, functions = [], []
        for tool in tools:
            listed.append({"name": tool.name, "title": tool.title, "description": tool.description,
                           "input_schema": tool.input_schema, "output_schema": tool.output_schema,
                           "annotations": tool.annotations.model_dump(by_alias=True, exclude_none=True)})
            functions.append({"type": "function", "function": {"name": tool.name, "description": tool.description,
                                                                "parameters": tool.input_schema}})
        return {"tools": listed, "openai_functions": functions}

    def tool_route(tool: BoundTool):
        async def call_tool(request: Request) -> JSONBody:
            arguments = parsed_body(request.scope)
            if not isinstance(arguments, dict):
                raise InvalidInput("the request body must be a JSON object of tool arguments")
            try:
                kwargs = tool.validate(arguments)  # the one validator, as MCP runs it
            except ValidationError as e:
                errors, total = argument_errors(e)
                log.info("invalid arguments for %s: %d errors", tool.name, total)
                return JSONBody(validation_problem(errors, total), status_code=422)
            return JSONBody(await tool.handler(runtime.tool_context(), **kwargs))

        call_tool.__doc__ = f"Call `{tool.name}`: {tool.description.splitlines()[0]} (body: its arguments)"
        return call_tool

    for tool in tools:
        app.add_api_route(f"/v1/tools/{tool.name}", tool_route(tool), methods=["POST"], tags=["tools"],
                          name=f"call_{tool.name}", response_class=JSONBody, responses=openapi.ERRORS)

    @app.post("/v1/tools/{tool_name}", include_in_schema=False)
    async def unknown_tool(tool_name: str) -> JSONBody:
        return JSONBody(problem("UnknownTool", f"unknown tool {tool_name[:100]!r}; available: {', '.join(tools.names())}"),
                        status_code=404)

    # --- OpenAI / Cohere-compatible routes -------------------------------------------------------

    if "embed" in tools:
        @app.post("/v1/embeddings", tags=["compatible"], response_class=JSONBody,
                  responses={200: {"model": openapi.EmbeddingsResponse}, **openapi.ERRORS})
        async def embeddings(body: EmbeddingsRequest) -> JSONBody:
            """OpenAI-compatible embeddings (`dimensions` and `encoding_format` honoured)."""
            result = await embed_tool(runtime.tool_context(), body.input, model=body.model, dimensions=body.dimensions)
            if result.representation != "dense":
                raise UnsupportedTask(f"model {result.model} produces {result.representation} vectors; the OpenAI "
                                      "embeddings shape holds dense ones: use POST /v1/tools/embed")
            data = []
            for i, vec in enumerate(result.embeddings):
                value: Any = vec
                if body.encoding_format == "base64":
                    value = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
                data.append({"object": "embedding", "index": i, "embedding": value})
            tokens = sum(result.token_counts)
            return JSONBody({"object": "list", "data": data, "model": result.model,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    if "rerank" in tools:
        @app.post("/v1/rerank", tags=["compatible"], responses={200: {"model": openapi.RerankResponse},
                                                               **openapi.ERRORS})
        async def rerank(body: RerankRequest) -> dict:
            """Cohere/Jina-style rerank: results with index and relevance_score, best first."""
            docs = []
            for d in body.documents:
                docs.append(d if isinstance(d, str) else d.text)
            result = await rerank_tool(runtime.tool_context(), body.query, docs, model=body.model, top_k=body.top_n,
                                       return_documents=True)
            return {"model": result.model, "method": result.method,
                    "results": [{"index": r.index, "relevance_score": r.score,
                                 **({"document": {"text": r.text}} if body.return_documents else {})}
                                for r in result.results]}

    @app.get("/v1/models", tags=["compatible"])
    async def models() -> dict:
        """The catalog in the OpenAI list shape, with task and residency."""
        cards = list_models(runtime.tool_context()).models
        return {"object": "list", "data": [{"object": "model", "owned_by": "sie-mcp", **c.model_dump()}
                                           for c in cards]}

    app.openapi = lambda: openapi.document(app, settings, tools)  # type: ignore[method-assign]
    return app
