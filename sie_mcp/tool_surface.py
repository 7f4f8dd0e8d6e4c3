"""How a declared tool runs over MCP: the SDK `Tool` built from a `BoundTool` (sie_mcp/declare.py), and the
call path — runtime from the lifespan, the tools/ handler, engine errors to tool errors, the result as
structured content plus one compact text block."""

from __future__ import annotations

from typing import Any

import orjson
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent

from engine.errors import EngineError
from sie_mcp.declare import BoundTool
from sie_mcp.errors import tool_error
from sie_mcp.runtime import RuntimeHandle
from tools import wire
from tools.context import Progress
from tools.schemas import ToolResult

# The context the SDK gives a tool: its lifespan context is the RuntimeHandle our lifespans yield (mcp_server.py).
ToolCtx = Context[RuntimeHandle, Any]


def _progress(ctx: ToolCtx) -> Progress:
    async def report(done: float, total: float | None, message: str | None) -> None:
        await ctx.report_progress(done, total, message)

    return report


def mcp_tool(tool: BoundTool) -> Tool:
    """The SDK's Tool for a declaration: our schema as `inputSchema`, our validator, our result model."""

    async def call(ctx: ToolCtx, **arguments: Any) -> CallToolResult:
        """Run the tools/ handler; engine errors become tool errors. The result goes out as structured content
        plus one compact text block (`wire_content`; the SDK's default text block is indented JSON, about
        twice as large: slower to send and heavier in an agent's context)."""
        try:
            runtime = await ctx.request_context.lifespan_context.get()
            result = await tool.handler(runtime.tool_context(_progress(ctx)), **arguments)
        except EngineError as e:
            raise tool_error(e) from e
        text, structured = wire_content(result)
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    return Tool(fn=call, name=tool.name, title=tool.title, description=tool.description,
                parameters=tool.input_schema, fn_metadata=tool.metadata, is_async=True, context_kwarg="ctx",
                annotations=tool.annotations)


def wire_content(result: ToolResult) -> tuple[str, dict[str, Any]]:
    """A tool result as MCP sends it: the text block an agent reads (the compact JSON, or the result's
    summary where it is mostly numbers for programs) and the structured content (the whole result), parsed
    back from the result's JSON (a compiled parser; faster than a second walk of the model)."""
    text = wire.dumps(result)
    return result.agent_text(text).decode(), orjson.loads(text)
