"""The GLiNER reference run, executed by `.venv-gliner/bin/python` (the `gliner` package pins an older
transformers than our tests use; scripts/setup_gliner_ref.sh builds that venv).

    python tests/gliner_reference.py SPEC.json

SPEC: {"tokenizer": dir, "out": dir, "cases": [{"name", "encoder_config", "gliner": {...}, "seed", "scale",
"label_sets": [[...]], "texts": [...], "decode": [{"threshold", "flat", "multi_label"}]}]}. Per case it builds a
random GLiNER offline (`GLiNER.from_config(..., backbone_from_pretrained=False, load_tokenizer=True,
local_files_only=True)` after seeding), scales the head's last layers by `scale` (random heads give logits near 0,
where a strict `> threshold` would hinge on the last bits), saves it with `save_pretrained(safe_serialization=True)`
to OUT/NAME/model and writes OUT/NAME/ref.pt: per label set the logits of every text (real words only) and the
entities `inference` returns for each decode setting. Nothing here imports the project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from gliner import GLiNER


def _scale(model, factor: float) -> None:
    core = model.model
    with torch.no_grad():
        if hasattr(core, "prompt_rep_layer"):
            core.prompt_rep_layer[3].weight.mul_(factor)
            core.span_rep_layer.span_rep_layer.out_project[3].weight.mul_(factor)
        if hasattr(core, "scorer"):
            core.scorer.out_mlp[3].weight.mul_(factor)


def _logits(model, texts: list[str], labels: list[str]) -> list[torch.Tensor]:
    prepared = model.prepare_batch(texts, labels)
    batch = model.collate_batch(prepared["input_x"], prepared["entity_types"])
    out = model.run_batch(batch)
    n_words = [len(t) for t in prepared["tokens"]]
    return [out.logits[i, :n].clone() for i, n in enumerate(n_words)]


def run_case(case: dict, tokenizer: str, out: Path) -> None:
    torch.manual_seed(case.get("seed", 0))
    config = dict(case["gliner"], model_name=tokenizer, encoder_config=dict(case["encoder_config"]))
    model = GLiNER.from_config(config, backbone_from_pretrained=False, load_tokenizer=True, local_files_only=True)
    model.eval()
    _scale(model, case.get("scale", 1.0))
    target = out / case["name"]
    model.save_pretrained(target / "model", safe_serialization=True)
    results = []
    for labels in case["label_sets"]:
        logits = _logits(model, case["texts"], labels)
        decoded = [model.inference(case["texts"], labels, threshold=d["threshold"], flat_ner=d["flat"],
                                   multi_label=d["multi_label"], batch_size=4) for d in case["decode"]]
        results.append({"labels": labels, "logits": logits, "entities": decoded})
    torch.save({"results": results, "decode": case["decode"], "texts": case["texts"]}, target / "ref.pt")


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(spec["out"])
    for case in spec["cases"]:
        run_case(case, spec["tokenizer"], out)


if __name__ == "__main__":
    main()
