"""The MCP server: the declared tools on the official SDK's MCPServer, the runtime via the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import Resource as MCPResource
from mcp_types import NotificationParams
from pydantic import ValidationError

from engine.errors import EngineError, ServerMisconfigured
from ontology.store import GraphNotFound, GraphStore
from sie_mcp import __version__
from sie_mcp.errors import tool_error, tool_validation_message
from sie_mcp.runtime import Runtime, RuntimeHandle
from sie_mcp.settings import Settings
from sie_mcp.declare import Surface
from sie_mcp.tool_surface import mcp_tool

log = logging.getLogger("sie_mcp")
STARTUP_GRACE_S = 1.0

def instructions(tools: Surface) -> str:
    """What the server tells an agent at `initialize`: the exposed tools only (`--tools`)."""
    text = ("Small specialised models as tools, so you can process many texts without reading them all: "
            f"{', '.join(tools.names())}. Every tool has a default model")
    if "list_models" in tools:
        text += "; list_models shows the others"
    if "build_ontology" in tools:
        text += ". Graphs are also resources graph://{id}"
    return text + "."


GRAPH_MIME = "application/json"


class SieMCPServer(MCPServer):
    """The SDK's server with tool errors as an agent should read them, and graphs as resources.

    Errors: the SDK words a failed call as "Error executing tool <name>: <text>", and rejected arguments as
    pydantic's report (its model name, the rejected value, a documentation URL). Here the text is ours
    alone: the error type and what to do.

    Resources: `resources/list` lists every stored graph as `graph://{id}` (stored graphs change at run
    time, so they cannot be registered once), `graph://{graph_id}` is the template that reads one (its
    node-link JSON, as the store keeps it). The store is given at construction (stdio: before the engine
    starts), so listing graphs never waits for torch."""

    def __init__(self, graphs: GraphStore | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.graphs = graphs
        if graphs is None:
            return
        store = graphs

        @self.resource("graph://{graph_id}", name="graph", title="Knowledge graph", mime_type=GRAPH_MIME,
                       description="A knowledge graph built by build_ontology, as node-link JSON (networkx): "
                                   "entities with aliases and evidence, relations with sentences. Large: to "
                                   "navigate, prefer graph_search / graph_neighbors / graph_path.")
        def read_graph(graph_id: str) -> str:
            try:
                return store.read_text(graph_id)
            except GraphNotFound as e:
                raise ResourceError(f"{e.args[0]}; list graphs with resources/list") from None

    async def list_resources(self) -> list[MCPResource]:
        listed = await super().list_resources()
        if self.graphs is None:
            return listed
        return listed + [MCPResource(uri=f"graph://{g.id}", name=g.id, title=f"Knowledge graph {g.id}",
                                     description=f"node-link JSON, {g.bytes} bytes", mime_type=GRAPH_MIME,
                                     size=g.bytes)
                         for g in self.graphs.list()]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as e:
            if isinstance(e.__cause__, EngineError):  # a limit breach found by the validator (sie_mcp/declare.py)
                raise tool_error(e.__cause__) from e.__cause__
            raise
        except ToolError as e:
            cause = e.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(tool_validation_message(cause)) from cause
            if isinstance(cause, ToolError):  # ours, from tool_surface.mcp_tool: already worded for an agent
                raise ToolError(str(cause)) from cause
            raise


async def _on_initialized(ctx: Any, _: NotificationParams) -> None:
    ctx.lifespan_context.begin()  # stdio: the engine starts now that `initialize` has been answered


def build_mcp(lifespan: Callable[[MCPServer], AbstractAsyncContextManager[RuntimeHandle]],
              graphs: GraphStore | None = None, tools: Surface | None = None) -> MCPServer:
    """The MCP server; `graphs`: the store whose graphs are served as resources (the runtime's); `tools`: the
    declared tools this server exposes (default: every tool, default limits)."""
    from sie_mcp.declare import surface

    tools = tools if tools is not None else surface()
    declared = [mcp_tool(tool) for tool in tools]
    server = SieMCPServer(graphs, name="sie-mcp", version=__version__, instructions=instructions(tools),
                          lifespan=lifespan, log_level="WARNING", tools=declared)
    # MCPServer has no public notification hook; its low-level server does (add_notification_handler).
    server._lowlevel_server.add_notification_handler("notifications/initialized", NotificationParams,
                                                     _on_initialized)
    return server


def shared_runtime(handle: RuntimeHandle) -> Callable[[MCPServer], AbstractAsyncContextManager[RuntimeHandle]]:
    """A lifespan that hands every session the one runtime started by the app (HTTP transport)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[RuntimeHandle]:
        yield handle

    return lifespan


def owned_runtime(runtime: Runtime, preload: list[str]) -> Callable[[MCPServer], AbstractAsyncContextManager[RuntimeHandle]]:
    """A lifespan that starts the engine, loads `preload`, and drains it after the session (in-memory
    clients in tests and scripts: the models are resident when the first call comes)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[RuntimeHandle]:
        await runtime.engine.start(preload, serving=True)
        try:
            yield RuntimeHandle(runtime)
        finally:
            await runtime.engine.shutdown()

    return lifespan


async def preload_in_background(runtime: Runtime, models: list[str]) -> str | None:
    """Load `models`; a failure is one warning line and the message (calls that need the model report
    it as their own error), never an exception out of the server's task group."""
    for model_id in models:
        try:
            await runtime.engine.pool.describe(model_id)
        except EngineError as e:
            log.warning("preloading %s failed: %s (calls that use it will report the error)", model_id, e)
            return str(e)
    return None


def deferred_runtime(settings: Settings, graphs: GraphStore | None = None,
                     ) -> Callable[[MCPServer], AbstractAsyncContextManager[RuntimeHandle]]:
    """The stdio lifespan: `initialize` is answered at once while a background task imports the engine
    (torch), starts it and preloads the default models; tool calls wait for the runtime, and a call
    for a model still loading waits for that load (the pool shares it). `graphs`: the graph store the
    runtime's tools use (the one `build_mcp` serves as resources; default: the settings' own)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[RuntimeHandle]:
        async def build() -> Runtime:
            from sie_mcp.runtime import build_runtime, preload_models

            try:
                runtime = await asyncio.to_thread(build_runtime, settings, graphs)
            except ValueError as e:  # a malformed setting (--model, a catalog or taxonomy file)
                log.error("cannot start the engine: %s", e)
                raise ServerMisconfigured(f"the server cannot start: {e}; the operator must fix its settings "
                                          "and restart it") from e
            except EngineError as e:
                log.error("cannot start the engine: %s", e)
                raise
            await runtime.engine.start(serving=True)
            loading.add(asyncio.create_task(preload_in_background(runtime, preload_models(settings))))
            return runtime

        loading: set[asyncio.Task | asyncio.TimerHandle] = set()  # references keep them alive
        handle = RuntimeHandle(build)
        # The build starts once the client has its `initialize` answer (`notifications/initialized`,
        # `SieMCPServer`), so torch's import does not compete with that answer for the interpreter; a
        # client that never sends the notification gets it started after a second, or by its first call.
        loading.add(asyncio.get_running_loop().call_later(STARTUP_GRACE_S, handle.begin))  # type: ignore[arg-type]
        try:
            yield handle
        finally:
            for pending in loading:
                pending.cancel()
            runtime = handle.built()
            if runtime is not None:
                await runtime.engine.shutdown()

    return lifespan
