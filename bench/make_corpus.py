"""Build bench/data/corpus.jsonl: real English, mixed lengths, from the Python standard library's docs.

Run once; the output is committed so every run on every machine embeds byte-identical text (docstrings
change between Python versions, so the file, not this script, is the source of truth).
Shape: mostly short texts (one paragraph), a long tail of several paragraphs joined (up to ~512 tokens).
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import sys
import warnings
from pathlib import Path

SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3", "pydoc_data"}
OUT = Path(__file__).parent / "data" / "corpus.jsonl"


def docstrings() -> list[str]:
    found = []
    names = sorted(m.name for m in pkgutil.iter_modules()
                   if m.name in sys.stdlib_module_names and not m.name.startswith("_") and m.name not in SKIP)
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(name)
        except Exception:
            continue
        objs = [mod] + [v for _, v in sorted(vars(mod).items()) if inspect.isclass(v) or inspect.isfunction(v)]
        for obj in objs:
            doc = inspect.getdoc(obj)
            if doc and doc not in found:
                found.append(doc)
    return found


def paragraphs(doc: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", doc):
        text = " ".join(para.split())
        # Keep prose: enough letters, not a code sample or a table.
        if len(text) >= 20 and sum(c.isalpha() for c in text) / len(text) > 0.7 and ">>>" not in text:
            out.append(text)
    return out


def main() -> None:
    texts: list[str] = []
    for i, doc in enumerate(docstrings()):
        paras = paragraphs(doc)
        texts.extend(paras)
        if i % 12 == 0 and len(paras) >= 3:  # the long tail: whole docstrings
            texts.append(" ".join(paras)[:2600])
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("w") as f:
        for t in texts:
            f.write(json.dumps(t) + "\n")
    print(f"{len(texts)} texts -> {OUT}")


if __name__ == "__main__":
    main()
