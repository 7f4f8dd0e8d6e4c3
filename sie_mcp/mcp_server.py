"""The MCP server: the declared tools on the official SDK's MCPServer, the runtime via the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.tools import Tool
from mcp.types import Resource as MCPResource

from ontology.store import GraphNotFound
from sie_mcp import __version__
from sie_mcp.tool_surface import TOOLS, Runtime, bounded
from tools.ontology import GraphService

INSTRUCTIONS = (
    "Small specialised models as tools, so you can process many texts without reading them all: "
    "embed (vectors), rerank (keep the passages that matter), extract_entities (people, organisations, "
    "places with offsets), classify (labels or a deep taxonomy path), build_ontology (a knowledge graph from "
    "documents, then graph_search / graph_neighbors / graph_path / graph_subgraph to navigate it; graphs are "
    "also resources graph://{id}). Call list_models to see the models; every tool has a sensible default model."
)
GRAPH_MIME = "application/json"


class SieMCPServer(MCPServer):
    """MCPServer plus graphs as resources: `resources/list` lists every stored graph as `graph://{id}`
    (stored graphs change at run time, so they cannot be registered once), `graph://{graph_id}` is the
    template that reads one (its node-link JSON, as the store keeps it)."""

    def __init__(self, graphs: GraphService | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.graphs = graphs
        if graphs is None:
            return
        store = graphs.store

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
                         for g in self.graphs.store.list()]


def build_mcp(lifespan: Callable[[MCPServer], AbstractAsyncContextManager[Runtime]],
              graphs: GraphService | None = None) -> MCPServer:
    tools = []
    for tool in TOOLS.values():
        declared = Tool.from_function(tool.declared, name=tool.name, title=tool.title, annotations=tool.annotations,
                                      structured_output=True)
        declared.fn_metadata = bounded(declared.fn_metadata)  # bounded argument errors (tool_surface)
        tools.append(declared)
    return SieMCPServer(graphs, name="sie-mcp", version=__version__, instructions=INSTRUCTIONS,
                        lifespan=lifespan, log_level="WARNING", tools=tools)


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
