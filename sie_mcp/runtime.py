"""What the tools need at request time: the engine and the tools' state (`Runtime`), how it is built from the
settings (`build_runtime`), and how the MCP lifespan hands it to tools (`RuntimeHandle`).

Importing this module does not import torch: the stdio server answers `initialize` first and builds the
runtime behind it (sie_mcp/mcp_server.py, `deferred_runtime`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tools.context import Defaults, Limits, Progress, ToolContext, new_taxonomy_store

if TYPE_CHECKING:
    from engine.engine import Engine
    from ontology.store import GraphStore
    from sie_mcp.settings import Settings
    from tools.ontology import GraphService
    from tools.taxonomy import TaxonomyStore
    from tools.vector_store import VectorStore


@dataclass(frozen=True)
class Runtime:
    """What the surface needs at request time; injected through the MCP lifespan and FastAPI state."""

    engine: Engine
    defaults: Defaults
    limits: Limits
    taxonomies: TaxonomyStore = field(default_factory=new_taxonomy_store)  # registered taxonomies, label cache
    graphs: GraphService | None = None  # knowledge graphs (tools/ontology.py)
    store: VectorStore | None = None  # collections (tools/retrieval.py)

    def tool_context(self, progress: Progress | None = None) -> ToolContext:
        return ToolContext(self.engine, self.defaults, self.limits, progress, taxonomies=self.taxonomies,
                           graphs=self.graphs, store=self.store)


class RuntimeHandle:
    """The runtime as the MCP lifespan hands it to tools: ready (HTTP: the app built it), or built on demand
    in the background (stdio: `initialize` is answered first, then torch is imported and the engine starts;
    a call waits for it). A failed build is that call's error, never the process's end."""

    def __init__(self, runtime: Runtime | Callable[[], Awaitable[Runtime]]) -> None:
        self._ready = runtime if isinstance(runtime, Runtime) else None
        self._build = None if self._ready else runtime
        self._building: asyncio.Future[Runtime] | None = None

    def begin(self) -> None:
        """Start building (once); a no-op when the runtime is ready or already being built."""
        if self._ready is None and self._building is None and self._build is not None:
            self._building = asyncio.ensure_future(self._build())  # type: ignore[arg-type]

    async def get(self) -> Runtime:
        if self._ready is None:
            self.begin()
            assert self._building is not None
            self._ready = await asyncio.shield(self._building)
        return self._ready

    def built(self) -> Runtime | None:
        """The runtime if it was built (for shutdown), else None; a build still running is cancelled."""
        if self._ready is None and self._building is not None:
            if not self._building.done():
                self._building.cancel()
            elif not self._building.cancelled() and self._building.exception() is None:
                self._ready = self._building.result()
        return self._ready


def build_runtime(settings: Settings, graphs: GraphStore | None = None) -> Runtime:
    """The engine and the tools' state; `graphs`: a graph store already made (default: the settings')."""
    from engine.catalog import Catalog
    from engine.engine import Engine
    from tools.ontology import GraphService
    from tools.taxonomy import TaxonomyStore

    catalog = Catalog.from_yaml(settings.catalog) if settings.catalog else Catalog.default()
    for spec in settings.model:
        catalog.register_path(spec)
    engine = Engine(catalog, settings.pool_config(), settings.scheduler_config())
    return Runtime(engine, settings.defaults(), settings.limits(), TaxonomyStore.from_specs(settings.taxonomy),
                   GraphService(graphs or settings.open_graph_store()), settings.vector_store())


def preload_models(settings: Settings) -> list[str]:
    """The models loaded at start: `--preload`, else the default embedding model."""
    return settings.preload or [settings.default_embed_model]
