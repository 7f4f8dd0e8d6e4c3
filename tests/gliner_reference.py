"""The GLiNER reference run, executed by `.venv-gliner/bin/python` (the `gliner` package pins an older
transformers than our tests use; scripts/setup_gliner_ref.sh builds that venv).

    python tests/gliner_reference.py SPEC.json

SPEC: {"tokenizer": dir, "out": dir, "cases": [{"name", "encoder_config", "gliner": {...}, "seed", "scale",
"label_sets": [[...]], "texts": [...], "decode": [{"quantile", "flat", "multi_label"}], "check_inference"}]}. Per case it builds a
random GLiNER offline (`GLiNER.from_config(..., backbone_from_pretrained=False, load_tokenizer=True,
local_files_only=True)` after seeding), spreads the random head's logits (`scale`), picks each decode setting's
threshold as a quantile of the span probabilities (random heads put them anywhere), saves it with `save_pretrained(safe_serialization=True)`
to OUT/NAME/model and writes OUT/NAME/ref.pt: per label set the logits of every text (real words only) and the
entities for each decode setting (one forward pass, decoded per setting by gliner's own inference steps). Nothing here imports the project.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

import torch  # noqa: E402
from gliner import GLiNER  # noqa: E402


def _scale(model, factor: float) -> None:
    """Spread the random head's logits: the word-side projections and the last layer, by `factor` each."""
    core = model.model
    with torch.no_grad():
        if hasattr(core, "prompt_rep_layer"):
            marker = core.span_rep_layer.span_rep_layer
            for layer in (marker.project_start[0], marker.project_end[0], marker.out_project[0],
                          marker.out_project[3], core.prompt_rep_layer[3]):
                layer.weight.mul_(factor)
        if hasattr(core, "scorer"):
            for layer in (core.scorer.proj_token, core.scorer.proj_label, core.scorer.out_mlp[3]):
                layer.weight.mul_(factor)


def _thresholds(results: list[dict], span_model: bool, decode: list[dict]) -> list[dict]:
    """Each setting's `quantile` of the probabilities of all real spans (all texts and label sets) becomes its
    threshold, rounded, moved off any probability closer than 1e-4 (a strict `>` must not hinge on rounding)."""
    probs = []
    for r in results:
        for x in r["logits"]:
            if span_model:
                w, k = x.shape[:2]
                x = x[(torch.arange(w)[:, None] + torch.arange(k)[None, :]) < w]
            probs.append(torch.sigmoid(x).flatten())
    p = torch.cat(probs)
    out = []
    for d in decode:
        t = round(torch.quantile(p, d["quantile"]).item(), 4)
        while ((p - t).abs() < 1e-4).any():
            t = round(t + 1e-4, 4)
        out.append({"threshold": t, "flat": d["flat"], "multi_label": d["multi_label"]})
    return out


def _run(model, texts: list[str], labels: list[str], decode: list[dict]) -> dict:
    """One forward pass through gliner's own inference steps (what `inference` chains: prepare_batch,
    collate_batch, run_batch, decode_batch, map_entities_to_text), decoded under every setting."""
    prepared = model.prepare_batch(texts, labels)
    batch = model.collate_batch(prepared["input_x"], prepared["entity_types"])
    out = model.run_batch(batch)
    n_words = [len(t) for t in prepared["tokens"]]
    entities = []
    for d in decode:
        decoded = model.decode_batch(out, batch, threshold=d["threshold"], flat_ner=d["flat"],
                                     multi_label=d["multi_label"])
        entities.append(model.map_entities_to_text(decoded, prepared["valid_texts"], prepared["valid_to_orig_idx"],
                                                   prepared["start_token_map"], prepared["end_token_map"],
                                                   prepared["num_original"]))
    return {"labels": labels, "logits": [out.logits[i, :n].clone() for i, n in enumerate(n_words)],
            "entities": entities}


def run_case(case: dict, tokenizer: str, out: Path) -> None:
    started = time.perf_counter()
    torch.manual_seed(case.get("seed", 0))
    config = dict(case["gliner"], model_name=tokenizer, encoder_config=dict(case["encoder_config"]))
    model = GLiNER.from_config(config, backbone_from_pretrained=False, load_tokenizer=True, local_files_only=True)
    model.eval()
    _scale(model, case.get("scale", 1.0))
    target = out / case["name"]
    model.save_pretrained(target / "model", safe_serialization=True)
    span_model = hasattr(model.model, "prompt_rep_layer")
    probe = [_run(model, case["texts"], labels, []) for labels in case["label_sets"]]
    decode = _thresholds(probe, span_model, case["decode"])
    results = [_run(model, case["texts"], labels, decode) for labels in case["label_sets"]]
    if case.get("check_inference"):  # the step functions decode as `inference` itself does
        first = results[0]
        d = decode[0]
        assert model.inference(case["texts"], first["labels"], threshold=d["threshold"], flat_ner=d["flat"],
                               multi_label=d["multi_label"]) == first["entities"][0]
    torch.save({"results": results, "decode": decode, "texts": case["texts"]}, target / "ref.pt")
    print(f"{case['name']}: {time.perf_counter() - started:.1f} s", file=sys.stderr)


def main() -> None:
    print(f"imported in {time.perf_counter() - STARTED:.1f} s", file=sys.stderr)
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(spec["out"])
    for case in spec["cases"]:
        run_case(case, spec["tokenizer"], out)


if __name__ == "__main__":
    main()
