"""sie-mcp: the protocol surface (CLI now; MCP and HTTP servers build on the same engine)."""
