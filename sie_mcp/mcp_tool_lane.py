"""The short way through a `tools/call` of one of our own tools, for the single-call path.

Through the SDK a call's result is handled as data five more times than over plain HTTP: validated
against the tool's output schema, dumped by the server runner, validated and dumped again by the
per-revision result sieve, copied, then written. Each is a walk over every number of every vector, and
with the runner's per-request machinery (middleware chain, request context, surface validation of the
params) that made an MCP embed call cost twice the event-loop CPU of the same call over HTTP (0.5 ms more
per 4-text call, docs/benchmarks.md). On 2 cores that CPU comes out of the forward pass.

None of it changes the answer for a call of a tool declared in `tool_surface`: the arguments go through
the SDK's own validation (`FuncMetadata.validate_arguments`, the function `Tool.run` calls), the tool
returns one of our typed result models, valid by construction, and the wire result has a fixed shape:
the text block and structured content `tool_surface` gives the SDK (one JSON, written by `tools.wire`), `isError`, and
for 2026-07-28 `resultType` and the `serverInfo` stamp. Engine errors become the same `isError` result,
with the same text, as under `mcp_server.SieMCPServer` (our error text alone, without the SDK's
"Error executing tool <name>: " prefix); a crash gives the SDK's generic text and a logged traceback.

`ToolLane.result` declines (returns None) before running anything whenever the SDK's answer could
differ: an unknown tool, params with anything beyond `name`, `arguments` and the 2026-07-28 envelope in
`_meta` (a progress token, trace context, task fields), params or arguments the SDK would reject (it
writes that error), server middleware other than the SDK's defaults, and whenever OpenTelemetry tracing
is configured (the SDK records a span per call; without a configured tracer provider those spans go
nowhere). `mcp_single_call` then runs the call through the SDK. The equivalence tests in
tests/test_http_api.py compare its answers with the SDK's for every era.

One difference is left on purpose: the SDK validates a result against the tool's output schema, which
turns a non-finite float (written as `null`) into an error result. Vectors are checked to be finite
where the result is built (`tools.wire`); a NaN *score* would reach the client as `null` here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.request_state import RequestStateBoundary
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types.methods import validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from opentelemetry import trace

from engine.errors import EngineError
from sie_mcp.errors import tool_error
from sie_mcp.runtime import Runtime
from sie_mcp.tool_surface import TOOLS
from tools import wire

logger = logging.getLogger(__name__)

_DEFAULT_MIDDLEWARE = (OpenTelemetryMiddleware, RequestStateBoundary)
_PARAM_KEYS = frozenset({"name", "arguments", "_meta"})
_ENVELOPE_KEYS = frozenset({PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY})


def tracing_configured() -> bool:
    """Whether an OpenTelemetry tracer provider has been installed (the default is a proxy to nothing)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


class ToolLane:
    """Runs a `tools/call` of a declared tool and returns the SDK's wire result for it, or None."""

    def __init__(self, runtime: Runtime, server: Any) -> None:
        # `server`: the SDK's low-level server (its `server_info_stamp` marks 2026-07-28 results).
        self.runtime = runtime
        self.server = server

    async def result(self, params: Mapping[str, Any], version: str) -> dict[str, Any] | None:
        name = params.get("name")
        tool = TOOLS.get(name) if isinstance(name, str) else None
        if tool is None or not params.keys() <= _PARAM_KEYS or not self._plain_server():
            return None
        meta = params.get("_meta")
        modern = version in MODERN_PROTOCOL_VERSIONS
        if meta is not None and not (isinstance(meta, Mapping) and meta.keys() <= (_ENVELOPE_KEYS if modern else set())):
            return None
        try:
            # The SDK's own checks, in its order: the params against the revision's surface (the envelope's
            # values, and `arguments` an object or absent), then the arguments against the tool's signature.
            validate_client_request("tools/call", version, params)
            kwargs = tool.metadata.validate_arguments(params.get("arguments") or {})
        except Exception:  # noqa: BLE001 - a rejection (or a validator's crash) is the SDK's to write
            return None
        try:
            answer = await tool.impl(self.runtime.tool_context(), **kwargs)
            # The structured content is the result's JSON: written once, and placed in the answer as it is.
            text = wire.dumps(answer)
            block = answer.agent_text(text)
        except EngineError as e:
            result = _error_result(str(tool_error(e)))
        except Exception:
            logger.exception("Tool %r raised an unexpected exception", name)
            result = _error_result(f"Error executing tool {name}")
        else:
            result = {"content": [{"type": "text", "text": block.decode()}], "isError": False,
                      "structuredContent": orjson.Fragment(text)}
        if modern:
            result["resultType"] = "complete"
            result["_meta"] = {SERVER_INFO_META_KEY: self.server.server_info_stamp}
        return result

    def _plain_server(self) -> bool:
        """No tracing to record, and no server middleware but the SDK's defaults: OpenTelemetry spans and the
        multi-round request-state boundary (a call carrying request state has a `requestState` param, which
        the lane declines)."""
        return (not tracing_configured()
                and all(isinstance(m, _DEFAULT_MIDDLEWARE) for m in getattr(self.server, "middleware", [None])))


def _error_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}
