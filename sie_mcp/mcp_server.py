"""The MCP server: the declared tools on the official SDK's MCPServer, the runtime via the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool

from sie_mcp import __version__
from sie_mcp.tool_surface import TOOLS, Runtime, bounded

INSTRUCTIONS = (
    "Small specialised models as tools, so you can process many texts without reading them all: "
    "embed (vectors), rerank (keep the passages that matter), extract_entities (people, organisations, "
    "places with offsets), classify (labels or a deep taxonomy path). Call list_models to see the models; "
    "every tool has a sensible default model."
)


def build_mcp(lifespan: Callable[[MCPServer], AbstractAsyncContextManager[Runtime]]) -> MCPServer:
    tools = []
    for tool in TOOLS.values():
        declared = Tool.from_function(tool.declared, name=tool.name, title=tool.title, annotations=tool.annotations,
                                      structured_output=True)
        declared.fn_metadata = bounded(declared.fn_metadata)  # bounded argument errors (tool_surface)
        tools.append(declared)
    return MCPServer(name="sie-mcp", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan,
                     log_level="WARNING", tools=tools)


def shared_runtime(runtime: Runtime) -> Callable[[MCPServer], AbstractAsyncContextManager[Runtime]]:
    """A lifespan that hands every session the one runtime started by the app (HTTP transport)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Runtime]:
        yield runtime

    return lifespan


def owned_runtime(runtime: Runtime, preload: list[str]) -> Callable[[MCPServer], AbstractAsyncContextManager[Runtime]]:
    """A lifespan that starts and drains the engine around the session (stdio: one session per process)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Runtime]:
        await runtime.engine.start(preload, serving=True)
        try:
            yield runtime
        finally:
            await runtime.engine.shutdown()

    return lifespan
