"""Engine errors mapped once per boundary: to an HTTP status, and to an MCP tool error."""

from __future__ import annotations

import logging

from mcp.server.mcpserver.exceptions import ToolError

from engine.errors import (
    EngineError,
    InputTooLong,
    InvalidInput,
    ModelLoadError,
    Overloaded,
    RequestTimeout,
    ShuttingDown,
    UnknownModel,
    UnsupportedTask,
)

log = logging.getLogger("sie_mcp")

# Most specific first.
_STATUS: list[tuple[type[EngineError], int]] = [
    (InputTooLong, 413),
    (UnknownModel, 404),
    (UnsupportedTask, 400),
    (InvalidInput, 400),
    (Overloaded, 429),
    (ShuttingDown, 503),
    (ModelLoadError, 503),
    (RequestTimeout, 503),
]


def http_status(error: EngineError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_body(error: EngineError) -> dict:
    body = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, Overloaded):
        body["retry_after_s"] = error.retry_after_s
    return {"error": body}


def tool_error(error: EngineError) -> ToolError:
    """The message an agent reads in an `isError` result: what went wrong and what to do."""
    log.info("tool error: %s: %s", type(error).__name__, error)
    return ToolError(f"{type(error).__name__}: {error}")
