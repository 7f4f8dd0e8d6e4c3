"""Engine errors mapped once per boundary: to an HTTP status, and to an MCP tool error."""

from __future__ import annotations

import logging

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from engine.errors import (
    EngineError,
    InputTooLong,
    InvalidInput,
    ModelLoadError,
    Overloaded,
    RequestTimeout,
    ShuttingDown,
    StoreUnavailable,
    UnknownCollection,
    UnknownModel,
    UnsupportedTask,
)

log = logging.getLogger("sie_mcp")

# Most specific first.
_STATUS: list[tuple[type[EngineError], int]] = [
    (InputTooLong, 413),
    (UnknownModel, 404),
    (UnknownCollection, 404),
    (UnsupportedTask, 400),
    (InvalidInput, 400),
    (Overloaded, 429),
    (ShuttingDown, 503),
    (ModelLoadError, 503),
    (RequestTimeout, 503),
    (StoreUnavailable, 503),
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


def validation_message(error: ValidationError) -> str:
    """Pydantic's rejection of tool arguments as an agent should read it: each field and what it needs,
    without the validator's model name, the rejected value or a documentation URL."""
    problems = []
    for e in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in e["loc"]) or "arguments"
        problems.append(f"{where}: {e['msg']}")
    return "InvalidArguments: " + "; ".join(problems) + ". Fix these arguments (the tool's input schema says " \
        "what each takes) and call again"
