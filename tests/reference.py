"""Helpers that run the reference implementation (transformers) on padded batches."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from engine.attention import AttentionBackendName
from engine.offline import OfflineModel
from engine.tokenization import Encoded


def serve(path, dtype: str = "float32", **options) -> OfflineModel:
    """Our implementation of the model at `path` behind a real Engine (fp32 unless asked)."""
    return OfflineModel(path, dtype, **options)


def load_fp32(path, backend: AttentionBackendName = AttentionBackendName.SDPA_GROUPED, **options) -> OfflineModel:
    """Our implementation in fp32 on one attention backend (default: the CPU default), behind a real Engine."""
    return OfflineModel(path, "float32", backend.value, **options)


def hf_eager(cls_name: str, path):
    """The reference: transformers' class `cls_name` from `path`, eager attention, eval mode."""
    import transformers

    return getattr(transformers, cls_name).from_pretrained(path, attn_implementation="eager").eval()


def copy_with_config(src: Path, dst: Path, edit: Callable[[dict], dict | None]) -> Path:
    """A copy of the model directory `src` at `dst` with its config.json edited: `edit` changes the dict in
    place or returns a new one."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    edited = edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg if edited is None else edited))
    return dst


def padded_inputs(encoded: list[Encoded], pad_id: int = 0, token_types: bool = True) -> dict[str, torch.Tensor]:
    """Right-padded reference inputs. `token_types=False` for models whose forward takes none."""
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = torch.tensor(e.ids)
        types[i, : len(e)] = torch.tensor(e.type_ids)
        mask[i, : len(e)] = 1
    if not token_types:
        return {"input_ids": ids, "attention_mask": mask}
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


@torch.inference_mode()
def reference_hidden(hf_model, encoded: list[Encoded], **pad_kw) -> list[torch.Tensor]:
    """Last hidden state per sequence, real tokens only: list of [len, C]."""
    inputs = padded_inputs(encoded, **pad_kw)
    hidden = hf_model(**inputs).last_hidden_state
    return [hidden[i, : len(e)] for i, e in enumerate(encoded)]


def reference_pool(per_seq: list[torch.Tensor], mode: str) -> torch.Tensor:
    rows = []
    for h in per_seq:
        rows.append({"cls": h[0], "mean": h.mean(0), "max": h.max(0).values, "last_token": h[-1],
                     "mean_sqrt_len": h.sum(0) / len(h) ** 0.5}[mode])
    return torch.stack(rows)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


@torch.inference_mode()
def engine_hidden(model, encoded: list[Encoded]) -> list[torch.Tensor]:
    """Our side of the comparison: the backbone's hidden states on one packed batch, split per sequence."""
    from engine.models.layers import AttentionContext

    batch = model.make_batch(encoded).to(model.info.device)
    hidden = model.backbone(batch, AttentionContext(model.attention, model.attention.prepare(batch)))
    return list(hidden.split([len(e) for e in encoded]))


def assert_token_logits_match(ours, hf_model, texts: list[str], make_inputs=padded_inputs, tol: float = 1e-4):
    """Our per-token logits against the reference's on every real token; returns our results."""
    results = ours.token_logits(texts)
    encoded = ours.tokenizer.encode(texts)
    with torch.inference_mode():
        ref = hf_model(**make_inputs(encoded)).logits
    for i, r in enumerate(results):
        n = len(encoded[i])
        assert r.logits.shape == (n, ref.shape[-1])
        assert max_abs(r.logits, ref[i, :n]) <= tol
    return results


def assert_batch_invariant(ours, texts: list[str], tol: float = 1e-5) -> None:
    """Each text embedded alone equals its row when embedded together with all the others."""
    together = ours.embed(texts).vectors
    for i, text in enumerate(texts):
        assert max_abs(ours.embed([text]).vectors[0], together[i]) <= tol


def assert_hidden_states_match(ours, hf_model, texts: list[str], tol: float = 1e-4, **pad_kw) -> list[int]:
    """Our backbone's hidden states against the reference's on every real token of a batch of very
    different lengths (≥ 16 texts, from ≤ 3 to ≥ 300 tokens); returns the lengths."""
    encoded = ours.tokenizer.encode(texts)
    lengths = [len(e) for e in encoded]
    assert len(texts) >= 16 and min(lengths) <= 3 and max(lengths) >= 300
    ref = reference_hidden(hf_model, encoded, **pad_kw)
    for h, r in zip(engine_hidden(ours, encoded), ref, strict=True):
        assert max_abs(h, r) <= tol
    return lengths

