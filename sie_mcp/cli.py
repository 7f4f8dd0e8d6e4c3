"""Command line.

    sie-tools serve [--transport stdio|http] [--host 127.0.0.1] [--port 8080] [--catalog FILE]
                  [--model NAME=PATH]… [--device auto] [--memory-budget 4GiB] [--max-batch-tokens N] …
    sie-tools models [--catalog FILE] [--model NAME=PATH]…
    sie-tools embed TEXT… [--embed-model ID] [--dimensions N]   (one-off embedding, JSON lines)
    sie-tools kg build DIR --out OUT [--server URL] [--labels person organization …]
                                   (a knowledge graph of a folder: JSON, GraphML, Turtle, JSON-LD, HTML view)
    sie-tools download [MODEL…]      (pre-fetch catalog models into the cache; default: the preload models)
    sie-tools router --listen HOST:PORT --backend [POOL=]HOST:PORT… [--pool NAME=MODEL,…]…
                                   (a stock HAProxy in front of replicas, routing by model: sie_mcp/router.py)

Every `serve` option is also an environment variable: --memory-budget is SIE_MEMORY_BUDGET, and so on.
Parsing arguments imports neither torch nor the MCP SDK (`--help` and `--version` answer at once); each
command imports what it runs.
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
from sie_mcp import __version__
from sie_mcp.settings import Settings

LIST_FIELDS = {"model", "preload", "taxonomy", "allowed_hosts", "allowed_origins"}
ENV_ONLY = {"auth_tokens"}  # secrets: a command line is visible to every user of the machine (ps)
# The settings the one-off commands read (the rest configure serving).
MODELS_FIELDS = ("catalog", "model", "taxonomy", "log_level")  # taxonomy: files are checked at start
ROUTER_FIELDS = ("max_body_bytes", "request_timeout_s", "read_timeout_s", "default_embed_model")  # the server's
EMBED_FIELDS = ("catalog", "model", "device", "dtype", "default_embed_model", "log_level")


def _add_settings_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """One flag per Settings field (or the fields in `only`); defaults stay None so env vars and Settings
    defaults apply."""
    for name, field in Settings.model_fields.items():
        if name in ENV_ONLY or (only is not None and name not in only):
            continue
        flag = "--" + name.replace("_", "-")
        default = field.get_default(call_default_factory=True)
        help_text = f"{field.description} [env SIE_{name.upper()}; default {default!r}]".replace("%", "%%")
        if name in LIST_FIELDS:
            parser.add_argument(flag, action="append", default=None, help=help_text)
        elif field.annotation is bool and name.startswith("no_"):  # argparse reads any --no-X as False
            parser.add_argument(flag, action="store_const", const=True, default=None, help=help_text)
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
    from engine.host_memory import bound_kernel_caches, bound_malloc_arenas  # torch-free

    bound_malloc_arenas(settings.malloc_arena_max)
    bound_kernel_caches(settings.kernel_cache_entries)
    if settings.transport == "http":
        from sie_mcp.http_guard import Access

        access = Access.from_settings(settings)  # an exposing setting is refused before torch is imported
        import uvicorn

        from sie_mcp.drain import FLUSH_S, DrainingServer
        from sie_mcp.http_app import create_app

        app = create_app(settings, access=access)
        # Keep-alive longer than load balancers' and clients' idle timeouts: a server closing an idle
        # connection just as a client reuses it is a connection reset for that client.
        config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                                timeout_graceful_shutdown=int(FLUSH_S), timeout_keep_alive=65)
        DrainingServer(config, drain=app.state.drain).run()
        return 0
    from sie_mcp.declare import surface
    from sie_mcp.mcp_server import build_mcp, deferred_runtime
    from sie_mcp.mcp_single_call import fast_path_refusal
    from sie_mcp.stdio import serve_stdio

    # `initialize` is answered before torch is imported; the engine starts and the models load behind it.
    # The graph store is made here (no torch) so `resources/list` answers before the engine is up.
    tools = surface(settings)  # an unknown --tools name stops here, before anything starts
    graphs = settings.open_graph_store()
    server = build_mcp(deferred_runtime(settings, graphs), graphs, tools)
    # stdout carries the protocol; logs go to stderr. Every line is answered (sie_mcp/stdio.py) on the SDK
    # version that was verified; on another, the SDK's own transport.
    if fast_path_refusal("on") is None:
        import anyio

        anyio.run(serve_stdio, server)
    else:
        server.run("stdio")
    return 0


def _models(settings: Settings) -> int:
    from engine.registry import supported_architectures
    from sie_mcp.runtime import build_runtime
    from tools.models import list_models

    runtime = build_runtime(settings)
    for card in list_models(runtime.tool_context()).models:
        uses = f"  (default for {', '.join(card.default_for)})" if card.default_for else ""
        print(f"{card.id:28} {card.task:12} {card.availability:12} {card.description}{uses}")
    print(f"\nsupported architectures: {', '.join(supported_architectures())}")
    return 0


def _embed(args: argparse.Namespace, settings: Settings) -> int:
    from sie_mcp.runtime import build_runtime
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


def _kg_build(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from sie_mcp.kg_builder import BuildError, build

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        report = build(Path(args.dir), Path(args.out), settings, server=args.server, labels=args.labels,
                       parse_model=args.parse_model, max_chars=settings.max_chars, batch_docs=args.batch,
                       text_field=args.text_field, relations=args.relations)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{report.documents} documents -> {report.entities} entities, {report.relations} relations"
          f"{f' ({len(report.skipped)} inputs skipped)' if report.skipped else ''}; wrote {report.out}/graph.json, "
          "graph.graphml, graph.ttl, graph.jsonld, graph.html")
    if report.graph_id:
        print(f"graph id on the server: {report.graph_id} (resource graph://{report.graph_id})")
    return 0


def _download(args: argparse.Namespace, settings: Settings) -> int:
    """Fetch each model's files into the cache (HF_HOME for hf: sources) so that pods never download under
    load: an initContainer and the image build run this. Exit 1 naming every model that failed."""
    from engine.catalog import Catalog
    from sie_mcp.runtime import preload_models

    catalog = Catalog.from_yaml(settings.catalog) if settings.catalog else Catalog.default()
    for spec in settings.model:
        catalog.register_path(spec)
    names = args.models or preload_models(settings)
    failed: list[str] = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", file=sys.stderr, flush=True)  # hf: downloads draw tqdm bars
        try:
            entry = catalog.get(name)
            path = entry.resolve_path()
            if not (path / "config.json").is_file():
                raise EngineError(f"model {entry.id}: no config.json in {path}")
        except EngineError as e:
            print(f"  failed: {e}", file=sys.stderr)
            failed.append(name)
            continue
        print(f"  ok: {entry.id} ({entry.source})", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} of {len(names)} models failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sie-tools", description="Small specialised models as tools for agents.")
    parser.add_argument("--version", action="version", version=f"sie-tools {__version__} (sie-agent-tools)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the MCP server (stdio, or http with the HTTP API)")
    _add_settings_flags(serve)
    models = sub.add_parser("models", help="list catalog models and supported architectures")
    _add_settings_flags(models, MODELS_FIELDS)
    embed = sub.add_parser("embed", help="embed texts (arguments, or lines on stdin) as JSON lines")
    embed.add_argument("texts", nargs="*")
    embed.add_argument("--embed-model", default=None, help="catalog id (default: the default embedding model)")
    embed.add_argument("--dimensions", type=int, default=None, help="Matryoshka truncation")
    _add_settings_flags(embed, EMBED_FIELDS)
    kg = sub.add_parser("kg", help="knowledge graphs").add_subparsers(dest="kg_command", required=True)
    kg_build = kg.add_parser("build", help="build a knowledge graph from a folder of .txt/.md/.jsonl files")
    kg_build.add_argument("dir", help="folder to read (recursively)")
    kg_build.add_argument("--out", required=True, help="output folder (replaced once the new graph is complete)")
    kg_build.add_argument("--server", default=None, help="build on a running server (its URL, e.g. "
                                                         "http://127.0.0.1:8080) over MCP instead of in-process")
    kg_build.add_argument("--labels", nargs="+", default=None, help="entity types, e.g. person organization place "
                                                                    "(with a zero-shot entity model: exactly the "
                                                                    "graph's types)")
    kg_build.add_argument("--parse-model", "--entity-model", dest="parse_model", default=None,
                          help="a spaCy pipeline (parses and finds entities; default: en_core_web_sm), or an entity "
                               "model (GLiNER with --labels, token classification) while spaCy parses")
    kg_build.add_argument("--relations", nargs="+", default=None, help="relation labels typed edges are mapped "
                                                                       "onto, e.g. founded 'works for'")
    kg_build.add_argument("--batch", type=int, default=64, help="documents per build call")
    kg_build.add_argument("--text-field", default="text", help="the text field of .jsonl records")
    _add_settings_flags(kg_build)
    download = sub.add_parser("download", help="pre-fetch catalog models into the model cache (HF_HOME)")
    download.add_argument("models", nargs="*", help="catalog ids or HF ids (default: the preload models)")
    _add_settings_flags(download)
    router = sub.add_parser("router", help="route calls to replicas by model (a stock HAProxy; docs/deploy.md)")
    from sie_mcp.router import add_arguments  # no heavy imports: argparse and the standard library

    add_arguments(router)
    _add_settings_flags(router, ROUTER_FIELDS)  # the same limits and timeouts as the replicas behind it
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
        if args.command == "kg":
            return _kg_build(args, settings)
        if args.command == "download":
            return _download(args, settings)
        if args.command == "router":
            from sie_mcp.router import run

            return run(args, settings)
        return _embed(args, settings)
    except (EngineError, ValueError) as e:  # a user gets a message, never a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
