"""Collection errors, beside the collections they are about (tools/retrieval.py, tools/vector_store.py);
mapped once at each boundary (sie_mcp/errors.py)."""

from __future__ import annotations

from engine.errors import EngineError


class UnknownCollection(EngineError):
    """A retrieval collection that does not exist (the caller's: 404)."""


class StoreUnavailable(EngineError):
    """The vector database failed or cannot be reached, the embedded store or a server at its URL (the
    deployment's: 503)."""
