"""Whether a catalog model can be used on this machine now (`CatalogEntry.availability`).

Its own module, free of torch: tools/schemas.py declares it in list_models' result schema, which the MCP
server publishes before the engine is imported."""

from typing import Literal

Availability = Literal["bundled", "local", "cached", "downloadable", "unavailable"]
