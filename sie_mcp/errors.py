"""Errors mapped once per boundary: engine errors to an HTTP status and to an MCP tool error, and every other
HTTP error (the framework's 404/405/422, the guard's 401/403/415/421, the body's 400/408/413) to the same
body, `{"error": {"type", "message"}}`.

What reaches a client is bounded and leaks nothing internal: messages are capped in length, validation
errors name the field and the first offending items (never the input itself), and filesystem paths are
cut to their last component. The full text goes to the server log, one line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Send

from engine.errors import (
    BackendUnavailable,
    ComputeError,
    EngineError,
    InputTooLong,
    InvalidInput,
    ModelLoadError,
    Overloaded,
    RequestTimeout,
    ServerMisconfigured,
    ShuttingDown,
    UnknownModel,
    UnsupportedArchitecture,
    UnsupportedTask,
)

from ontology.errors import UnknownEntity, UnknownGraph
from tools.errors import StoreUnavailable, UnknownCollection

log = logging.getLogger("sie_mcp")

MAX_MESSAGE_CHARS = 1000  # an error text an agent reads: enough to act on, never a dump of the input
MAX_DETAILS = 5  # validation errors listed per answer

# Most specific first.
_STATUS: list[tuple[type[EngineError], int]] = [
    (InputTooLong, 413),
    (UnknownModel, 404),
    (UnknownCollection, 404),
    (UnknownGraph, 404),
    (UnknownEntity, 404),
    (UnsupportedTask, 400),
    (InvalidInput, 400),
    (Overloaded, 429),
    (ShuttingDown, 503),
    (ModelLoadError, 503),
    (UnsupportedArchitecture, 503),
    (BackendUnavailable, 503),
    (ComputeError, 503),  # ModelOutputError included
    (RequestTimeout, 503),
    (StoreUnavailable, 503),
    (ServerMisconfigured, 503),
]
# Server-side faults found while loading or running a model: the call was fine, the deployment is not.
_OPERATOR_FAULTS = (ModelLoadError, UnsupportedArchitecture, BackendUnavailable, ComputeError)

# An absolute path of two or more components (not part of a URL, not one of this server's routes):
# replaced by its last component.
_PATH = re.compile(r"(?<![\w:/.~-])(?!/v1/)(?:/[\w.@+~-]+){2,}/?")


def http_status(error: EngineError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def public_text(text: str) -> str:
    """`text` as a client may see it: no filesystem paths, at most MAX_MESSAGE_CHARS characters."""
    text = _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def public_message(error: EngineError) -> str:
    message = str(error)
    if isinstance(error, _OPERATOR_FAULTS):
        message += " (a fault of the server's configuration or model files, not of the call: the operator must " \
                   "fix it; meanwhile use another model)"
    return public_text(message)


def problem(type_: str, message: str, **extra: Any) -> dict[str, Any]:
    """The error body every HTTP route answers with."""
    return {"error": {"type": type_, "message": public_text(message), **extra}}


def error_body(error: EngineError) -> dict[str, Any]:
    extra = {"retry_after_s": error.retry_after_s} if isinstance(error, Overloaded) else {}
    return problem(type(error).__name__, public_message(error), **extra)


def retry_headers(error: EngineError) -> dict[str, str] | None:
    if isinstance(error, Overloaded):
        return {"Retry-After": str(int(max(1, error.retry_after_s)))}
    return None


def log_engine_error(error: EngineError) -> None:
    """The one log line of an engine error (full text: paths included, for the operator)."""
    status = http_status(error)
    log.log(logging.WARNING if status >= 500 else logging.INFO, "%s: %s", type(error).__name__, error)


def tool_error(error: EngineError) -> ToolError:
    """The message an agent reads in an `isError` result: what went wrong and what to do."""
    log_engine_error(error)
    return ToolError(f"{type(error).__name__}: {public_message(error)}")


_TYPE_NAMES = {"str", "int", "float", "bool", "dict", "list", "none", "bytes", "typed-dict"}
_TAG = re.compile(r"^(constrained-|function-|lax-or-strict|json-or-python|nullable|union|tagged-union|literal|"
                  r"definition-ref|model)|\[|^[A-Z][A-Za-z]*Object$")  # ...Object: sie_mcp/tooldefs' nested types
_TYPE_ERRORS = {"string_type", "list_type", "dict_type", "int_type", "float_type", "bool_type", "none_required",
                "model_type", "model_attributes_type", "is_instance_of", "int_from_float", "string_sub_type"}


def field_location(loc: Sequence[Any]) -> list[Any]:
    """A pydantic error location without the body and the union-member tags (`constrained-str`,
    `list[str]` …): the path of the field in the caller's JSON."""
    return [p for p in loc if p != "body" and not (isinstance(p, str) and (p in _TYPE_NAMES or _TAG.search(p)))]


def _without_union_noise(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A value that fails every branch of a union gets one error per branch; the branches of another JSON type
    ("should be a valid string" for a list) say nothing, so they are left out where another error remains."""
    located = [(tuple(field_location(e.get("loc", ()))), e) for e in errors]
    real = {loc for loc, e in located if e.get("type") not in _TYPE_ERRORS}
    kept = [e for loc, e in located if e.get("type") not in _TYPE_ERRORS
            or not any(r[:len(loc)] == loc for r in real)]
    return kept or list(errors)


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The first MAX_DETAILS validation errors as `{loc, msg, type}`: where and what, never the input."""
    out = []
    for e in _without_union_noise(errors)[:MAX_DETAILS]:
        loc = field_location(e.get("loc", ()))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")  # our validators' own words
        out.append({"loc": loc[:8], "msg": public_text(msg)[:200], "type": str(e.get("type", ""))})
    return out


def validation_message(errors: Sequence[Mapping[str, Any]], total: int | None = None) -> str:
    """One line naming the failing fields, e.g. `texts.0: Input should be a valid string; …(+41 more)`.
    `total`: how many errors there were, where `errors` holds only the first ones (`argument_errors`)."""
    total = len(errors) if total is None else total
    kept = _without_union_noise(errors)
    parts = []
    for d in validation_details(kept):
        where = ".".join(str(p) for p in d["loc"]) or "arguments"
        parts.append(f"{where}: {d['msg']}")
    hidden = (total - len(errors)) + (len(kept) - len(parts))  # cut before us, and beyond MAX_DETAILS here
    more = f" (+{hidden} more)" if hidden > 0 else ""
    return "invalid arguments: " + "; ".join(parts) + more


def tool_validation_message(error: ValidationError) -> str:
    """A tool's rejected arguments as an agent reads them: each field and what it needs (never the
    rejected value, the validator's model name or a documentation URL), and what to do next."""
    problems = validation_message(*argument_errors(error))
    return "InvalidArguments: " + problems.removeprefix("invalid arguments: ") + \
        ". Fix these arguments (the tool's input schema says what each takes) and call again"


def validation_problem(errors: Sequence[Mapping[str, Any]], total: int | None = None) -> dict[str, Any]:
    return problem("ValidationError", validation_message(errors, total), details=validation_details(errors))


# Where a ValidationError cut to its first MAX_DETAILS errors (sie_mcp/declare.BoundedFuncMetadata) keeps
# the count of the errors it had.
TOTAL_ERRORS = "sie_total_errors"


def argument_errors(error: ValidationError) -> tuple[list[Any], int]:
    """A tool-argument ValidationError's errors (never the input) and how many there were in all."""
    errors = error.errors(include_url=False, include_input=False)
    return list(errors), getattr(error, TOTAL_ERRORS, len(errors))


def json_response(body: dict[str, Any], status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=dict(headers or {}),
                    media_type="application/json")


async def send_problem(send: Send, status: int, type_: str, message: str,
                       headers: Iterable[tuple[str, str]] = ()) -> None:
    """An error answer written straight to ASGI (for middleware that answers before any route)."""
    await send_json(send, status, problem(type_, message), headers)


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()) -> None:
    data = orjson.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


_HTTP_TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
               406: "NotAcceptable", 408: "RequestTimeout", 413: "RequestTooLarge", 415: "UnsupportedMediaType",
               421: "MisdirectedRequest", 422: "ValidationError", 429: "Overloaded", 503: "Unavailable"}


def http_type(status: int) -> str:
    return _HTTP_TYPES.get(status, "HTTPError")


def install_handlers(app: Any) -> None:
    """Every error a FastAPI app answers, in the one body shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(EngineError)
    async def engine_error(_: Any, e: EngineError) -> Response:
        log_engine_error(e)
        return json_response(error_body(e), http_status(e), retry_headers(e))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Any, e: RequestValidationError) -> Response:
        errors = e.errors()
        log.info("invalid request: %s", validation_message(errors))
        return json_response(validation_problem(errors), 422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Any, e: HTTPException) -> Response:
        message = e.detail if isinstance(e.detail, str) else http_type(e.status_code)
        return json_response(problem(http_type(e.status_code), message), e.status_code, e.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Any, e: Exception) -> Response:
        log.exception("unhandled error")
        return json_response(problem("InternalError", "internal error; see the server log"), 500)
