"""The HTTP surface: MCP (streamable HTTP at /mcp) and a plain HTTP API on one FastAPI app.

Routes: GET /v1/tools, POST /v1/tools/{tool}, POST /v1/embeddings (OpenAI-compatible), POST /v1/rerank
(Cohere/Jina-style), GET /v1/models, GET /metrics, GET /healthz, GET /readyz, OpenAPI at /docs.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from engine.catalog import Catalog
from engine.engine import Engine
from engine.errors import EngineError, InvalidInput, UnsupportedTask
from sie_mcp import __version__
from sie_mcp.errors import error_body, http_status
from sie_mcp.mcp_response_mode import mcp_routes
from sie_mcp.mcp_server import build_mcp, shared_runtime
from sie_mcp.settings import Settings
from sie_mcp.tool_surface import TOOLS, Runtime
from tools import wire
from tools.embed import embed as embed_tool
from tools.ontology import GraphService
from tools.models import list_models
from tools.rerank import rerank as rerank_tool
from tools.taxonomy import TaxonomyStore

log = logging.getLogger("sie_mcp")


class JSONBody(Response):
    """A JSON response written in one compiled pass by `tools.wire.dumps` (models, plain data, float32
    arrays): the stdlib encoder behind FastAPI's JSONResponse took several times longer on embedding
    results, event-loop time taken from the forward pass on a small machine."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return wire.dumps(content)


def build_runtime(settings: Settings) -> Runtime:
    catalog = Catalog.from_yaml(settings.catalog) if settings.catalog else Catalog.default()
    for spec in settings.model:
        catalog.register_path(spec)
    engine = Engine(catalog, settings.pool_config(), settings.scheduler_config())
    return Runtime(engine, settings.defaults(), settings.limits(), TaxonomyStore.from_specs(settings.taxonomy),
                   GraphService(settings.graph_store()))


def preload_models(settings: Settings) -> list[str]:
    return settings.preload or [settings.default_embed_model]


# --- request/response models of the OpenAI- and Cohere-compatible routes -------------------------------


class EmbeddingsRequest(BaseModel):
    input: str | list[str] = Field(description="Text or texts to embed")
    model: str | None = Field(None, description="Model id (default: the server's embedding model)")
    dimensions: int | None = Field(None, ge=1, description="Matryoshka truncation")
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


class RerankRequest(BaseModel):
    query: str
    documents: list[str | dict[str, Any]] = Field(description="Strings, or objects with a 'text' field")
    model: str | None = None
    top_n: int | None = Field(None, ge=1)
    return_documents: bool = True


class BodyLimit:
    """Pure ASGI middleware: 413 for request bodies over `limit` bytes (declared or streamed)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send) -> None:
        body = JSONBody({"error": {"type": "RequestTooLarge",
                                   "message": f"request body exceeds {self.limit} bytes"}}, status_code=413)
        await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


class _TooLarge(Exception):
    pass


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    runtime = runtime or build_runtime(settings)
    engine: Engine = runtime.engine
    mcp = build_mcp(shared_runtime(runtime), runtime.graphs)
    mcp_routes_, mcp_managers = mcp_routes(mcp, "/mcp", settings.stateless_http, settings.mcp_response,
                                           settings.host, runtime, settings.max_body_bytes)
    state = {"ready": False, "preload_error": None}

    async def preload() -> None:
        try:
            for model_id in preload_models(settings):
                await engine.pool.describe(model_id)
            state["ready"] = True
        except EngineError as e:
            state["preload_error"] = str(e)
            log.error("preloading failed: %s", e)

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
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.state.runtime = runtime
    app.state.drain = drain

    @app.exception_handler(EngineError)
    async def engine_error(_: Request, e: EngineError) -> JSONBody:
        status = http_status(e)
        log.log(logging.WARNING if status >= 500 else logging.INFO, "%s: %s", type(e).__name__, e)
        headers = {"Retry-After": str(int(max(1, getattr(e, "retry_after_s", 1))))} if status == 429 else None
        return JSONBody(error_body(e), status_code=status, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, e: Exception) -> JSONBody:
        log.exception("unhandled error")
        return JSONBody({"error": {"type": "InternalError", "message": "internal error; see the server log"}},
                        status_code=500)

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
        body = {"status": status, "preload_error": state["preload_error"]}
        return JSONBody(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus metrics (names documented in the README)."""
        return Response(engine.metrics.render(), media_type="text/plain; version=0.0.4")

    # --- tools -----------------------------------------------------------------------------------

    @app.get("/v1/tools", tags=["tools"])
    async def list_tools() -> dict:
        """Every tool with its JSON Schemas, also in the OpenAI function-calling shape."""
        listed = {t.name: t for t in await mcp.list_tools()}
        tools, functions = [], []
        for name, tool in TOOLS.items():
            mcp_tool = listed[name]
            tools.append({"name": name, "title": tool.title, "description": tool.description,
                          "input_schema": mcp_tool.input_schema, "output_schema": mcp_tool.output_schema,
                          "annotations": tool.annotations.model_dump(by_alias=True, exclude_none=True)})
            functions.append({"type": "function", "function": {"name": name, "description": tool.description,
                                                                "parameters": mcp_tool.input_schema}})
        return {"tools": tools, "openai_functions": functions}

    @app.post("/v1/tools/{tool_name}", tags=["tools"])
    async def call_tool(tool_name: str, request: Request) -> JSONBody:
        """Call a tool with its arguments (a JSON object); returns its structured result."""
        tool = TOOLS.get(tool_name)
        if tool is None:
            return JSONBody({"error": {"type": "UnknownTool", "message": f"unknown tool {tool_name!r}; "
                                       f"available: {', '.join(TOOLS)}"}}, status_code=404)
        try:
            arguments = await request.json()
        except ValueError:
            raise InvalidInput("the request body must be a JSON object of tool arguments") from None
        if not isinstance(arguments, dict):
            raise InvalidInput("the request body must be a JSON object of tool arguments")
        try:
            kwargs = tool.metadata.validate_arguments(arguments)  # as MCP validates them
        except ValidationError as e:
            return JSONBody({"error": {"type": "ValidationError", "message": "invalid arguments",
                                       "details": e.errors(include_url=False, include_input=False)}},
                            status_code=422)
        result = await tool.impl(runtime.tool_context(), **kwargs)
        return JSONBody(result)

    # --- OpenAI / Cohere-compatible routes -------------------------------------------------------

    @app.post("/v1/embeddings", tags=["compatible"], response_class=JSONBody)
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

    @app.post("/v1/rerank", tags=["compatible"])
    async def rerank(body: RerankRequest) -> dict:
        """Cohere/Jina-style rerank: results with index and relevance_score, best first."""
        docs = []
        for i, d in enumerate(body.documents):
            text = d if isinstance(d, str) else d.get("text")
            if not isinstance(text, str):
                raise InvalidInput(f"documents[{i}] must be a string or an object with a 'text' string")
            docs.append(text)
        result = await rerank_tool(runtime.tool_context(), body.query, docs, model=body.model, top_k=body.top_n)
        return {"model": result.model, "method": result.method,
                "results": [{"index": r.index, "relevance_score": r.score,
                             **({"document": {"text": r.document}} if body.return_documents else {})}
                            for r in result.results]}

    @app.get("/v1/models", tags=["compatible"])
    async def models() -> dict:
        """The catalog in the OpenAI list shape, with task and residency."""
        cards = list_models(runtime.tool_context()).models
        return {"object": "list", "data": [{"object": "model", "owned_by": "sie-mcp", **c.model_dump()}
                                           for c in cards]}

    return app
