"""What an agent pays to see our tools: characters of each tool's description plus its input schema in MCP
`tools/list` (compact JSON, as a client forwards it to a model), per tool and in all, plus the `title` keys.

    .venv/bin/python bench/bench_tool_list.py [--max-texts 7] [--json]

Runs the real MCP server in memory with the bundled catalog (no model is loaded: listing needs none).
"""

from __future__ import annotations

import argparse
import asyncio
import json


def count_titles(node: object) -> int:
    if isinstance(node, dict):
        return int("title" in node) + sum(count_titles(v) for v in node.values())
    if isinstance(node, list):
        return sum(count_titles(v) for v in node)
    return 0


async def listing(args: list[str]) -> list[dict]:
    from mcp import Client

    from sie_mcp.mcp_server import build_mcp, shared_runtime
    from sie_mcp.runtime import RuntimeHandle
    from sie_mcp.settings import Settings

    settings = Settings(**dict(zip(args[::2], args[1::2])))
    try:  # the declared-once surface (issue 25) binds the settings' limits into the schemas
        from sie_mcp.declare import surface  # type: ignore[attr-defined]

        server = build_mcp(shared_runtime(RuntimeHandle(None)), None, surface(settings))  # type: ignore[call-arg]
    except ImportError:  # before issue 25: the schemas did not depend on the settings
        server = build_mcp(shared_runtime(RuntimeHandle(None)))  # type: ignore[arg-type]
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
    return [t.model_dump(by_alias=True, exclude_none=True) for t in tools]


def cost(tool: dict) -> dict:
    schema = json.dumps(tool["inputSchema"], separators=(",", ":"))
    return {"tool": tool["name"], "description": len(tool.get("description", "")), "input_schema": len(schema),
            "total": len(tool.get("description", "")) + len(schema), "titles": count_titles(tool["inputSchema"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-texts", default=None)
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    tools = asyncio.run(listing(["max_texts", a.max_texts] if a.max_texts else []))
    rows = [cost(t) for t in tools]
    whole = sum(len(json.dumps(t, separators=(",", ":"))) for t in tools)
    if a.json:
        print(json.dumps({"tools": rows, "whole_json": whole}))
        return
    print("| tool | description | input schema | total | title keys |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['tool']}` | {r['description']:,} | {r['input_schema']:,} | {r['total']:,} | {r['titles']} |")
    print(f"| **all {len(rows)}** | {sum(r['description'] for r in rows):,} | {sum(r['input_schema'] for r in rows):,} "
          f"| **{sum(r['total'] for r in rows):,}** | {sum(r['titles'] for r in rows)} |")
    print(f"\nthe whole tools/list JSON (output schemas and annotations included): {whole:,} characters")


if __name__ == "__main__":
    main()
