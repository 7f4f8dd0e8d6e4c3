"""The tools, one module each: a `TOOL = ToolDeclaration(...)` (sie_mcp/declare.py). Adding a tool is adding a
module here (and its test); every surface picks it up."""
