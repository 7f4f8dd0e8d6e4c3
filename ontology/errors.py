"""Knowledge-graph errors, beside the graphs they are about; mapped once at each boundary (sie_mcp/errors.py)."""

from __future__ import annotations

from engine.errors import EngineError


class UnknownGraph(EngineError):
    """A knowledge graph that does not exist (the caller's: 404)."""


class UnknownEntity(EngineError):
    """A name that matches no entity of a knowledge graph (the caller's: 404)."""
