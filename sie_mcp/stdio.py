"""MCP over stdio, where every line gets an answer.

The SDK's stdio transport hands a line it cannot read as a JSON-RPC message (not JSON, a lone surrogate,
`"jsonrpc": "1.0"`, params that are not an object, a batch) to its session as an exception, which logs it
and answers nothing: a client waits for a reply that never comes. Here each line is checked first, as
the SDK would parse it, and a line that fails gets the JSON-RPC error the spec asks for on stdout: -32700
(parse error, id null) or -32600 (invalid request, with the request's id when it has a readable one).
Everything else goes to the SDK's transport unchanged.

Like the SDK's own transport, the wire is taken off fds 0 and 1 while serving (fd 1 points at stderr, so
stray prints cannot corrupt the protocol). Writes to the wire are whole lines under one lock (the SDK's
writer and this one share it).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
import orjson
import pydantic_core
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server

from sie_mcp.errors import public_text

log = logging.getLogger("sie_mcp")


class _Wire:
    """The protocol's stdout: whole lines, one writer at a time."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.lock = anyio.Lock()

    async def write(self, text: str) -> None:
        async with self.lock:
            await self.file.write(text)

    async def flush(self) -> None:
        async with self.lock:
            await self.file.flush()

    async def answer(self, body: dict[str, Any]) -> None:
        async with self.lock:
            await self.file.write(orjson.dumps(body).decode() + "\n")
            await self.file.flush()


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": public_text(message)[:300]}}


def check_line(line: str) -> dict[str, Any] | None:
    """The error answer for a line the SDK cannot read as a JSON-RPC message, or None (the SDK takes it)."""
    if not line.strip():
        return None  # the SDK skips blank lines too
    try:
        value = pydantic_core.from_json(line)
    except ValueError as e:
        return _error(None, -32700, f"Parse error: {e} (nesting deeper than 200 levels and lone UTF-16 "
                                    "surrogates are refused)")
    if isinstance(value, dict) and "id" in value:
        request_id = value["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, str | int | None):
            return _error(None, -32600, "Invalid Request: id must be a string, a number or null")
    try:
        types.jsonrpc_message_adapter.validate_python(value, by_name=False)
    except pydantic_core.ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        request_id = value.get("id") if isinstance(value, dict) else None
        return _error(request_id, -32600, f"Invalid Request: {where}: {first.get('msg', '')}")
    return None


class _CheckedLines:
    """stdin's lines, minus those answered here."""

    def __init__(self, lines: Any, wire: _Wire) -> None:
        self.lines, self.wire = lines, wire

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        async for line in self.lines:
            answer = check_line(line)
            if answer is None:
                yield line
            else:
                log.info("stdio: answered an unreadable message with JSON-RPC error %d", answer["error"]["code"])
                await self.wire.answer(answer)


def _take_std_streams() -> tuple[Any, Any]:
    """Private duplicates of fds 0 and 1 for the wire; fd 0 then reads /dev/null and fd 1 writes to stderr."""
    wire_in, wire_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    stdin = io.TextIOWrapper(os.fdopen(wire_in, "rb"), encoding="utf-8", errors="replace")
    stdout = io.TextIOWrapper(os.fdopen(wire_out, "wb"), encoding="utf-8")
    return anyio.wrap_file(stdin), anyio.wrap_file(stdout)


async def serve_stdio(server: MCPServer) -> None:
    """`server` over stdio, every line answered. (MCPServer.run_stdio_async with checked input.)"""
    stdin, stdout = _take_std_streams()
    wire = _Wire(stdout)
    lowlevel = server._lowlevel_server  # what run_stdio_async runs (SDK 2.3; see mcp_single_call.VERIFIED_SDK)
    async with stdio_server(stdin=_CheckedLines(stdin, wire), stdout=wire) as (read_stream, write_stream):  # type: ignore[arg-type]
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
