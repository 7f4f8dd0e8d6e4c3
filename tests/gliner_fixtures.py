"""Shared by the GLiNER parity tests and bench/bench_gliner.py: a WordPiece tokenizer built with `tokenizers`
(no hub), GLiNER configs in a real checkpoint's layout, and running the reference in its own venv."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

ROOT = Path(__file__).resolve().parent.parent
REF_PYTHON = ROOT / ".venv-gliner" / "bin" / "python"
REF2_PYTHON = ROOT / ".venv-gliner2" / "bin" / "python"  # gliner2 2.1.0 (scripts/setup_gliner2_ref.sh)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "with", "by", "at", "from", "as", "that",
         "it", "he", "she", "his", "her", "they", "their", "company", "people", "city", "river", "bank", "market",
         "price", "phone", "number", "apple", "paris", "london", "new", "york", "john", "smith", "mary", "works",
         "lives", "visited", "bought", "sold", "founded", "president", "engineer", "doctor", "product", "software",
         "year", "month"]


def build_tokenizer(out: Path, extra_tokens: int = 0, max_length: int = 512) -> Path:
    """A lowercasing WordPiece tokenizer: [PAD] [UNK] [CLS] [SEP] [MASK], single characters (so nothing is
    unknown), their `##` continuations, a few whole words, then `extra_tokens` filler pieces (to reach a real
    checkpoint's vocabulary size). Words outside the list become several sub-tokens."""
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-_/&$%@#")
    vocab = SPECIALS + chars + ["##" + c for c in chars] + WORDS
    vocab += [f"##x{i}" for i in range(extra_tokens)]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]",
                                     max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length, "pad_token": "[PAD]",
        "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}))
    return out


def vocab_size(tokenizer_dir: Path) -> int:
    return Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).get_vocab_size()


def deberta_v3(vocab: int, hidden: int = 32, layers: int = 2, heads: int = 4, intermediate: int = 64) -> dict:
    return dict(model_type="deberta-v2", vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                num_attention_heads=heads, intermediate_size=intermediate, max_position_embeddings=512,
                relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16 if hidden < 256 else 256,
                max_relative_positions=-1, share_att_key=True, norm_rel_ebd="layer_norm",
                position_biased_input=False, type_vocab_size=0, hidden_act="gelu", layer_norm_eps=1e-7,
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0,
                initializer_range=0.1 if hidden < 256 else 0.02)


def modernbert(vocab: int, hidden: int = 32, layers: int = 3, heads: int = 4, intermediate: int = 48) -> dict:
    return dict(model_type="modernbert", vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                num_attention_heads=heads, intermediate_size=intermediate, max_position_embeddings=512,
                local_attention=8, global_attn_every_n_layers=2, global_rope_theta=160_000.0,
                local_rope_theta=10_000.0, pad_token_id=0, bos_token_id=2, eos_token_id=3, cls_token_id=2,
                sep_token_id=3, initializer_range=0.1, attention_dropout=0.0, embedding_dropout=0.0,
                mlp_dropout=0.0)


def gliner_config(span_mode: str, hidden: int, **extra) -> dict:
    return dict(span_mode=span_mode, hidden_size=hidden, max_width=12, max_len=384, dropout=0.0,
                num_rnn_layers=1, **extra)


def run_reference(spec: dict, work: Path, timeout: float = 600) -> Path:
    """Run tests/gliner_reference.py in .venv-gliner (created by scripts/setup_gliner_ref.sh if missing)."""
    if not REF_PYTHON.exists():
        subprocess.run([str(ROOT / "scripts" / "setup_gliner_ref.sh")], check=True, timeout=900)
    path = work / "spec.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([str(REF_PYTHON), str(ROOT / "tests" / "gliner_reference.py"), str(path)],
                          capture_output=True, text=True, timeout=timeout,
                          env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                               "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
    if done.returncode != 0:
        raise RuntimeError(f"the gliner reference failed:\n{done.stderr[-4000:]}")
    (work / "reference.log").write_text(done.stderr)
    return Path(spec["out"])


def run_gliner2_reference(spec: dict, work: Path, timeout: float = 600) -> Path:
    """Run tests/gliner2_reference.py in .venv-gliner2 (created by scripts/setup_gliner2_ref.sh if missing)."""
    if not REF2_PYTHON.exists():
        subprocess.run([str(ROOT / "scripts" / "setup_gliner2_ref.sh")], check=True, timeout=900)
    path = work / "spec.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([str(REF2_PYTHON), str(ROOT / "tests" / "gliner2_reference.py"), str(path)],
                          capture_output=True, text=True, timeout=timeout,
                          env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                               "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
    if done.returncode != 0:
        raise RuntimeError(f"the gliner2 reference failed:\n{done.stderr[-4000:]}")
    (work / "reference.log").write_text(done.stderr)
    return Path(spec["out"])


class ReferenceWorker:
    """A benchmark's reference library in its own venv, kept running: `run N` timed passes over the texts the
    worker script read at start (bench/gliner_ref_worker.py, bench/gliner2_ref_worker.py), answered with
    `seconds entities`."""

    def __init__(self, python: Path, script: Path, model_dir: Path, texts: list[str], labels: list[str],
                 threshold: float, work: Path, *extra: str) -> None:
        spec = work / "bench_texts.json"
        spec.write_text(json.dumps({"texts": texts, "labels": labels, "threshold": threshold}))
        self.proc = subprocess.Popen([str(python), str(script), str(model_dir), str(spec), *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                          "TOKENIZERS_PARALLELISM": "false", "PATH": "/usr/bin:/bin"})
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def run(self, batch_size: int) -> tuple[float, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"run {batch_size}\n")
        self.proc.stdin.flush()
        seconds, entities = self.proc.stdout.readline().split()
        return float(seconds), int(entities)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
