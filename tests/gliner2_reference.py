"""The GLiNER2 reference run, executed by `.venv-gliner2/bin/python` (gliner2 2.1.0 with its own transformers;
scripts/setup_gliner2_ref.sh builds that venv). Nothing here imports the project.

    python tests/gliner2_reference.py SPEC.json

SPEC: {"tokenizer": dir, "out": dir, "cases": [{"name", "encoder_config", "max_width", "counting_layer", "seed", "shape",
"texts", "runs": [{"name", "kind", "spec", "quantile" | "threshold", "cls_quantile"}]}]}. Per case it builds a random
`GLiNER2` offline from the encoder config and the tokenizer dir, shapes its random weights (`_shape`), saves it
with `save_pretrained` to OUT/NAME/model, and per run writes, into OUT/NAME/ref.pt:

- `raw`: per text, per schema task, the count and the raw logits gliner2's own batch path computes
  (`_compute_direct_span_logits_batched`: [count, F, words, width]; classification: the classifier's logits);
- `threshold`: the run's threshold, given or a quantile of the span probabilities of all texts (moved off
  any probability closer than GAP, so a `>=` never hinges on rounding: our probabilities are within
  ~1e-6 of gliner2's in fp32, and a 1e-4 gap would push a threshold past dense probability regions);
- `results`: gliner2's public batch API on the texts (`batch_extract_entities`, `batch_extract_relations`,
  `batch_classify_text`, `batch_extract_json`) with include_confidence and include_spans.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
GAP = 1e-5  # a threshold stays this far from every probability

import torch  # noqa: E402
from transformers import AutoTokenizer, DebertaV2Config  # noqa: E402

from gliner2 import GLiNER2  # noqa: E402
from gliner2.configuration import ExtractorConfig  # noqa: E402


def _shape(model, shape: dict) -> None:
    """Random weights score every span near 0.5 and every label alike. Spread them: the span-side
    projections, the count-aware queries and the classifier by `scale`; `count_bias` on count_pred's class
    `count` makes every span task predict that many instances; `field_scale` amplifies the field-vector half
    of the query projector (so labels, and instances, differ)."""
    scale = shape.get("scale", 1.0)
    counter = model.count_embed
    v2 = hasattr(counter, "transformer")  # count_lstm_v2: a DownscaledTransformer instead of `projector`
    with torch.no_grad():
        marker = model.span_rep.span_rep_layer
        last = counter.transformer.out_projector[4] if v2 else counter.projector[2]
        for layer in (marker.project_start[0], marker.project_end[0], marker.out_project[0], marker.out_project[3],
                      last, model.classifier[0], model.classifier[2]):
            layer.weight.mul_(scale)
        if not v2:
            first = counter.projector[0]
            d = first.weight.shape[1] // 2
            first.weight[:, d:].mul_(shape.get("field_scale", 1.0))
        model.count_pred[2].bias[shape.get("count", 2)] += shape.get("count_bias", 0.0)
        for layer in model.encoder.encoder.layer:  # sharper attention: a marker reads its own field more
            attention = layer.attention.self
            attention.query_proj.weight.mul_(shape.get("attention_scale", 1.0))
            attention.key_proj.weight.mul_(shape.get("attention_scale", 1.0))


def _schema(model, kind: str, spec):
    if kind == "entities":
        return model.create_schema().entities(spec)
    if kind == "relations":
        return model.create_schema().relations(spec)
    if kind == "classify":
        return model._classification_schema(spec)
    return model._json_schema(spec)


def _raw(model, texts: list[str], schema) -> list[list[dict]]:
    """gliner2's own batch path up to the logits (what `_extract_from_batch` computes before decoding)."""
    from gliner2.training.trainer import ExtractorCollator

    schema_dicts, _ = model._build_schema_dicts_and_metadata([schema] * len(texts))
    batch = ExtractorCollator(model.processor, is_training=False)(list(zip(texts, schema_dicts)))
    tokens, schemas = model.processor.extract_embeddings_from_batch(model.encode_tokens(batch), batch.input_ids,
                                                                    batch)
    logits, counts = model._compute_direct_span_logits_batched(batch, tokens, schemas)
    out = []
    for i in range(len(texts)):
        per_task = []
        for j, task_type in enumerate(batch.task_types[i]):
            if task_type == "classifications":
                embs = torch.stack(schemas[i][j])
                per_task.append({"count": 0, "logits": model.classifier(embs[1:]).squeeze(-1).clone()})
            else:
                x = logits[i][j]
                per_task.append({"count": counts[i][j], "logits": None if x is None else x.clone()})
        out.append(per_task)
    return out


def _threshold(raw: list[list[dict]], quantile: float | None, fixed: float | None = None) -> float:
    probs = [torch.sigmoid(t["logits"]).flatten() for r in raw for t in r
             if t["logits"] is not None and t["logits"].dim() == 4]
    p = torch.cat(probs)
    p = p[p > 0]  # spans past a text's end are -inf
    t = fixed if quantile is None else round(torch.quantile(p, quantile).item(), 4)
    while ((p - t).abs() < GAP).any():
        t = round(t + GAP, 5)
    return t


def _results(model, kind: str, texts: list[str], spec, threshold: float) -> list[dict]:
    kw = dict(threshold=threshold, include_confidence=True, include_spans=True, batch_size=4)
    if kind == "entities":
        return model.batch_extract_entities(texts, spec, **kw)
    if kind == "relations":
        return model.batch_extract_relations(texts, spec, **kw)
    if kind == "classify":
        return model.batch_classify_text(texts, spec, **kw)
    return model.batch_extract_json(texts, spec, **kw)


def _cls_quantile(model, texts: list[str], spec: dict, quantile: float) -> dict:
    """Multi-label classification: `cls_threshold` as a quantile of the sigmoid probabilities."""
    raw = _raw(model, texts, _schema(model, "classify", spec))
    p = torch.cat([torch.sigmoid(t["logits"]) for r in raw for t in r])
    t = round(torch.quantile(p, quantile).item(), 4)
    while ((p - t).abs() < GAP).any():
        t = round(t + GAP, 5)
    return {name: {**cfg, "cls_threshold": t} for name, cfg in spec.items()}


def run_case(case: dict, tokenizer: str, out: Path) -> None:
    started = time.perf_counter()
    torch.manual_seed(case.get("seed", 0))
    config = ExtractorConfig(model_name=tokenizer, max_width=case.get("max_width", 8),
                             counting_layer=case.get("counting_layer", "count_lstm"))
    model = GLiNER2(config, encoder_config=DebertaV2Config(**case["encoder_config"]),
                    tokenizer=AutoTokenizer.from_pretrained(tokenizer))
    model.eval()
    _shape(model, case.get("shape", {}))
    target = out / case["name"]
    model.save_pretrained(str(target / "model"))
    texts = case["texts"]
    runs = {}
    with torch.inference_mode():
        for run in case["runs"]:
            spec = run["spec"]
            if "cls_quantile" in run:
                spec = _cls_quantile(model, texts, spec, run["cls_quantile"])
            raw = _raw(model, texts, _schema(model, run["kind"], spec))
            threshold = (_threshold(raw, run.get("quantile"), run.get("threshold")) if raw and raw[0][0]["count"]
                         else run.get("threshold", 0.5))
            runs[run["name"]] = {"kind": run["kind"], "spec": spec, "threshold": threshold, "raw": raw,
                                 "results": _results(model, run["kind"], texts, spec, threshold)}
    torch.save({"texts": texts, "runs": runs}, target / "ref.pt")
    print(f"{case['name']}: {time.perf_counter() - started:.1f} s", file=sys.stderr)


def main() -> None:
    print(f"imported in {time.perf_counter() - STARTED:.1f} s", file=sys.stderr)
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(spec["out"])
    for case in spec["cases"]:
        run_case(case, spec["tokenizer"], out)


if __name__ == "__main__":
    main()
