"""A direct path for the hottest MCP request: one stateless `tools/call` POST answered with one JSON body.

For every stateless POST of the handshake revisions (up to 2025-11-25) the SDK builds a transport with
memory streams, a task group, a JSON-RPC dispatcher and a server loop, and passes the request and its
answer through them; for a 2026-07-28 POST it serializes the answer with the standard library's
`json.dumps` (30 % of the event loop's time under load with embedding results). On 2 cores that is CPU
the forward pass loses: under 64 clients an MCP call cost about 1.4 ms more event-loop time than the
same call over plain HTTP (py-spy, docs/benchmarks.md). A POST holding one request whose answer is one
JSON body needs none of it. The call runs through the SDK's own single-exchange driver (`serve_one`, the
one the SDK uses for 2026-07-28 requests), under the same server runner, middleware and request context:
the answer is the SDK's result, errors and HTTP status, written by orjson. (A shorter "tool lane" past the
SDK's result pipeline for our own tools was measured against this path at 64 clients and gained nothing
at the median of 6 rounds, 0.95x: deleted, docs/benchmarks.md, issue 12.)

It takes only what it can answer exactly as the SDK would and hands everything else to the SDK
unchanged: batches, notifications, responses, `initialize`, any method but `tools/call`, a session id,
unknown protocol revisions, bodies over the SDK's size limit, integer ids beyond 64 bits, and every
request the SDK would reject (Accept, Content-Type, DNS-rebinding checks, the 2026-07-28 envelope and
routing-header rules): the SDK then writes the rejection. Who may call is decided in front of it
(sie_mcp/http_guard.py), as for every route.

It is safe against SDK upgrades by construction: it runs only with the SDK minor version it was verified
against (`VERIFIED_SDK`; any other logs one line at start-up and leaves every call to the SDK), only for the
protocol revisions listed in `FAST_PATH_REVISIONS` (a revision the SDK adds later goes to the SDK until
someone verifies it here), and `--mcp-fast-path off` turns it off. Differences that remain: a call in flight at shutdown runs to its end
(the SDK's per-POST server answers it with "Connection closed"); a 2026-07-28 answer is written as UTF-8
by orjson where the SDK's `json.dumps` escapes non-ASCII (the same JSON once parsed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import orjson
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.runner import modern_error_data, serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    X_MCP_HEADER_KEY,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import DEFAULT_NEGOTIATED_VERSION, ErrorData, JSONRPCError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from sie_mcp.settings import FastPath

logger = logging.getLogger(__name__)

VERIFIED_SDK = "2.3"  # the `mcp` minor version this path (and the tool lane) was checked against
# Revisions answered here: those the equivalence tests (tests/test_http_api.py) compare with the SDK's answers.
FAST_PATH_REVISIONS = frozenset({"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"})


def sdk_version() -> str:
    from importlib.metadata import version

    return version("mcp")


def fast_path_refusal(setting: FastPath, installed: str | None = None) -> str | None:
    """Why the single-call path must not run (None: it may): the setting, or an SDK it was not verified with."""
    if setting == "off":
        return "--mcp-fast-path off"
    installed = installed or sdk_version()
    if ".".join(installed.split(".")[:2]) != VERIFIED_SDK:
        return f"the installed MCP SDK is {installed}, the fast path was verified with {VERIFIED_SDK}.x"
    return None


@dataclass
class _OneExchange:
    """The dispatch context of one request with no back-channel (`mcp.shared.dispatcher.DispatchContext`):
    a JSON answer has no room for notifications, and a stateless server cannot send requests."""

    transport: TransportContext
    request_id: str | int
    message_metadata: ServerMessageMetadata
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> dict:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        return None  # nowhere to send it: the answer is one JSON body

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None  # no progress token (a call that has one is routed to an SSE stream)


class SingleCallJson:
    """Serves one stateless `tools/call` POST with a JSON answer, or declines (`serve` returns False)."""

    def __init__(self, manager: Any, lifespan_state: Any) -> None:
        # `manager`: the SDK's StreamableHTTPSessionManager for JSON answers (its server and security settings).
        self.server = manager.app
        self.security = TransportSecurityMiddleware(manager.security_settings)
        self.max_body = manager.max_request_body_size
        self.lifespan_state = lifespan_state
        self._header_params: dict[str, tuple[Mapping[str, Any], bool]] = {}

    async def serve(self, scope: Scope, body: bytes, message: Any, receive: Receive, send: Send) -> bool:
        """`message`: the body's parsed JSON (None where it is not JSON)."""
        if b'"tools/call"' not in body or len(body) > self.max_body:
            return False  # cheap tests first; an oversized body gets the SDK's 413
        request = Request(scope, receive)
        headers = request.headers
        if "mcp-session-id" in headers or not check_accept_headers(request)[0]:
            return False
        content_type = headers.get("content-type", "").split(";")[0]
        if "application/json" not in (part.strip() for part in content_type.split(",")):
            return False
        if await self.security.validate_request(request, is_post=True) is not None:
            return False
        if not _is_call(message):
            return False
        version = headers.get("mcp-protocol-version")
        if (version or DEFAULT_NEGOTIATED_VERSION) not in FAST_PATH_REVISIONS:
            return False
        if version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
            await self._answer_handshake_era(request, message, version or DEFAULT_NEGOTIATED_VERSION, send)
            return True
        if version in MODERN_PROTOCOL_VERSIONS:
            route = self._modern_route(request, message)
            if route is not None:
                await self._answer_modern(request, message, route, send)
                return True
        return False

    async def _answer_handshake_era(self, request: Request, message: dict, version: str, send: Send) -> None:
        """As the SDK's stateless transport and dispatcher answer (errors: its catch-all is code 0)."""
        transport = TransportContext(kind="streamable-http", can_send_request=False)
        await self._answer(request, message, transport, Connection.from_envelope(version, None, None), send,
                           _handshake_era_error)

    def _modern_route(self, request: Request, message: dict) -> InboundModernRoute | None:
        """The 2026-07-28 checks the SDK runs before dispatch; None where any of them would reject."""
        if find_duplicated_routing_header(request.headers.items()) is not None:
            return None
        route = classify_inbound_request(message, headers=dict(request.headers))
        if not isinstance(route, InboundModernRoute):
            return None
        params = message["params"]
        name, arguments = params.get("name"), params.get("arguments") or {}
        if self.server.get_tool_input_schema is None:
            return None  # the SDK would list the tools to find the schema: leave it to the SDK
        if isinstance(name, str) and isinstance(arguments, Mapping):
            try:
                schema = self.server.get_tool_input_schema(name)
                declares = schema is not None and self._declares_header_params(name, schema)
            except Exception:  # the SDK fails open here too: header validation never breaks a call
                logger.exception("Mcp-Param header validation skipped: the input schema lookup failed")
                declares = False
            if declares and validate_mcp_param_headers(schema, arguments, request.headers) is not None:
                return None
        return route

    def _declares_header_params(self, name: str, schema: Mapping[str, Any]) -> bool:
        """Whether a tool's input schema has any `x-mcp-header` annotation (without one, no `Mcp-Param-*`
        check can fail). Walking the schema took 3 % of the event loop per call; a schema is fixed while
        its tool is registered, so the answer is kept per schema object."""
        cached = self._header_params.get(name)
        if cached is None or cached[0] is not schema:
            cached = (schema, X_MCP_HEADER_KEY in json.dumps(schema))
            self._header_params[name] = cached
        return cached[1]

    async def _answer_modern(self, request: Request, message: dict, route: InboundModernRoute, send: Send) -> None:
        """As the SDK's 2026-07-28 entry answers: errors carry their table-mapped HTTP status."""
        transport = TransportContext(kind="streamable-http", can_send_request=False, headers=request.headers)
        connection = Connection.from_envelope(route.protocol_version, route.client_info, route.client_capabilities)
        await self._answer(request, message, transport, connection, send, _modern_error)

    async def _answer(self, request: Request, message: dict, transport: TransportContext, connection: Connection,
                      send: Send, error_answer: Callable[[Exception, str | int], tuple[int, bytes]]) -> None:
        """Run the call and write its answer; `error_answer` is the era's exception-to-wire mapping."""
        exchange = _OneExchange(transport=transport, request_id=message["id"],
                                message_metadata=ServerMessageMetadata(request_context=request,
                                                                       can_send_request=False))
        try:
            result = await serve_one(self.server, exchange, message["method"], message["params"],
                                     connection=connection, lifespan_state=self.lifespan_state)
        except Exception as e:  # noqa: BLE001 - the era's mapping decides what reaches the wire
            await _send_json(send, *error_answer(e, message["id"]))
            return
        await _send_json(send, 200, _result_body(message["id"], result))


def _handshake_era_error(e: Exception, request_id: str | int) -> tuple[int, bytes]:
    """The SDK dispatcher's mapping (its catch-all is code 0), always HTTP 200."""
    error = handler_exception_to_error_data(e)
    if error is None:
        logger.exception("tools/call raised", exc_info=e)
        error = ErrorData(code=0, message=str(e))
    answer = JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
    return 200, answer.model_dump_json(by_alias=True, exclude_unset=True).encode()


def _modern_error(e: Exception, request_id: str | int) -> tuple[int, bytes]:
    """The SDK's 2026-07-28 mapping, with the table-mapped HTTP status."""
    answer = JSONRPCError(jsonrpc="2.0", id=request_id, error=modern_error_data(e))
    status = ERROR_CODE_HTTP_STATUS.get(answer.error.code, 200)
    return status, answer.model_dump_json(by_alias=True, exclude_none=True).encode()


def _result_body(request_id: str | int, result: dict[str, Any]) -> bytes:
    """The JSON-RPC response for a result. `result` is already the wire dict (the server runner dumps it by
    alias, without unset fields; the tool lane builds it so), so it is written as it is, by orjson
    (pydantic's fallback for any non-JSON value it may hold)."""
    try:
        return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result},
                            default=pydantic_core.to_jsonable_python)
    except TypeError:  # e.g. an integer beyond 64 bits somewhere in the result: pydantic writes those
        return pydantic_core.to_json({"jsonrpc": "2.0", "id": request_id, "result": result})


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _is_call(message: Any) -> bool:
    """A single JSON-RPC 2.0 `tools/call` request with a usable id and object params, nothing else."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or message.get("method") != "tools/call":
        return False
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return False
    if isinstance(request_id, int) and not -(2**63) <= request_id < 2**64:
        return False  # valid JSON-RPC, but beyond what orjson writes: the SDK answers it
    return isinstance(message.get("params"), dict) and set(message) <= {"jsonrpc", "id", "method", "params"}
