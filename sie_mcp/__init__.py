"""sie-mcp: the protocol surface: MCP server (stdio, streamable HTTP), HTTP API, CLI, settings."""

__version__ = "0.1.0"
