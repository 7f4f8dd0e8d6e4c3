"""Command line.

    sie-mcp serve [--transport stdio|http] [--host 127.0.0.1] [--port 8080] [--catalog FILE]
                  [--model NAME=PATH]… [--device auto] [--memory-budget 4GiB] [--max-batch-tokens N] …
    sie-mcp models [--catalog FILE] [--model NAME=PATH]…
    sie-mcp embed TEXT…            (one-off embedding with the engine, JSON lines)

Every `serve` option is also an environment variable: --memory-budget is SIE_MEMORY_BUDGET, and so on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import typing

from pydantic import ValidationError

from engine.errors import EngineError
from sie_mcp.settings import Settings

LIST_FIELDS = {"model", "preload", "allowed_hosts", "allowed_origins"}
ENV_ONLY = {"auth_tokens"}  # secrets: a command line is visible to every user of the machine (ps)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Settings field; defaults stay None so env vars and Settings defaults apply."""
    for name, field in Settings.model_fields.items():
        if name in ENV_ONLY:
            continue
        flag = "--" + name.replace("_", "-")
        default = field.get_default(call_default_factory=True)
        help_text = f"{field.description} [env SIE_{name.upper()}; default {default!r}]".replace("%", "%%")
        if name in LIST_FIELDS:
            parser.add_argument(flag, action="append", default=None, help=help_text)
        elif field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif typing.get_origin(field.annotation) is typing.Literal:
            parser.add_argument(flag, choices=typing.get_args(field.annotation), default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, help=help_text)


def load_settings(args: argparse.Namespace) -> Settings:
    given = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    return Settings(**given)


def _serve(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sie_mcp.memory import bound_malloc_arenas

    bound_malloc_arenas(settings.malloc_arena_max)
    if settings.transport == "http":
        import uvicorn

        from sie_mcp.http_app import create_app

        app = create_app(settings)
        # Keep-alive longer than load balancers' and clients' idle timeouts: a server closing an idle
        # connection just as a client reuses it is a connection reset for that client.
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                    timeout_graceful_shutdown=30, timeout_keep_alive=65)
        return 0
    from sie_mcp.http_app import build_runtime, preload_models
    from sie_mcp.mcp_server import build_mcp, owned_runtime

    from sie_mcp.mcp_single_call import fast_path_refusal
    from sie_mcp.stdio import serve_stdio

    runtime = build_runtime(settings)
    server = build_mcp(owned_runtime(runtime, preload_models(settings)))
    # stdout carries the protocol; logs go to stderr. Every line is answered (sie_mcp/stdio.py) on the SDK
    # version that was verified; on another, the SDK's own transport.
    if fast_path_refusal("all") is None:
        import anyio

        anyio.run(serve_stdio, server)
    else:
        server.run("stdio")
    return 0


def _models(settings: Settings) -> int:
    from engine.registry import supported_architectures
    from sie_mcp.http_app import build_runtime
    from tools.models import list_models

    runtime = build_runtime(settings)
    for card in list_models(runtime.tool_context()).models:
        uses = f"  (default for {', '.join(card.default_for)})" if card.default_for else ""
        print(f"{card.id:28} {card.task:8} {card.description}{uses}")
    print(f"\nsupported architectures: {', '.join(supported_architectures())}")
    return 0


def _embed(args: argparse.Namespace, settings: Settings) -> int:
    from sie_mcp.http_app import build_runtime
    from tools.embed import embed

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    runtime = build_runtime(settings)

    async def run():
        try:
            return await embed(runtime.tool_context(), texts, model=args.embed_model, dimensions=args.dimensions)
        finally:
            await runtime.engine.shutdown()

    result = asyncio.run(run())
    for text, vec, n, cut in zip(texts, result.embeddings, result.token_counts, result.truncated, strict=True):
        print(json.dumps({"text": text, "model": result.model, "tokens": n, "truncated": cut,
                          "embedding": [round(float(x), 6) for x in vec]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sie-mcp", description="Small specialised models as tools for agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the MCP server (stdio, or http with the HTTP API)")
    _add_settings_flags(serve)
    models = sub.add_parser("models", help="list catalog models and supported architectures")
    _add_settings_flags(models)
    embed = sub.add_parser("embed", help="embed texts (arguments, or lines on stdin) as JSON lines")
    embed.add_argument("texts", nargs="*")
    embed.add_argument("--embed-model", default=None, help="catalog id (default: the default embedding model)")
    embed.add_argument("--dimensions", type=int, default=None, help="Matryoshka truncation")
    _add_settings_flags(embed)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
    except ValidationError as e:
        print(f"error: invalid settings: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            return _serve(settings)
        if args.command == "models":
            return _models(settings)
        return _embed(args, settings)
    except (EngineError, ValueError) as e:  # a user gets a message, never a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
