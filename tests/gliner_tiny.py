"""A tiny random GLiNER checkpoint made without the gliner package: a random transformers DeBERTa-v3 backbone and
our own GlinerHead with random weights, saved in a real checkpoint's layout (gliner_config.json with the encoder
config, model.safetensors with gliner's parameter names, tokenizer.json with the <<ENT>> / <<SEP>> markers).
For tests that need a zero-shot entity model but not parity with gliner (tests/test_gliner.py does parity)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer

from engine.models.gliner import BACKBONE_PREFIX, GlinerConfig, GlinerHead
from tests.gliner_fixtures import build_tokenizer, deberta_v3, gliner_config


def tiny_gliner(out: Path, seed: int = 0, scale: float = -1.0) -> Path:
    """`scale` multiplies the label prompts' last projection: a random head scores every span below 0 (no
    entity at gliner's 0.5); -1 turns that round, so the model finds entities (random ones, of the labels asked)."""
    import transformers

    build_tokenizer(out)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.add_special_tokens([AddedToken("<<ENT>>", special=True), AddedToken("<<SEP>>", special=True)])
    tok.save(str(out / "tokenizer.json"))
    encoder = deberta_v3(tok.get_vocab_size())
    torch.manual_seed(seed)
    backbone = transformers.DebertaV2Model(transformers.DebertaV2Config(**encoder)).eval()
    raw = {**gliner_config("markerV0", encoder["hidden_size"]), "model_type": "gliner", "encoder_config": encoder}
    head = GlinerHead(GlinerConfig.from_json(raw), encoder["hidden_size"])
    state = {BACKBONE_PREFIX + k: v.contiguous() for k, v in backbone.state_dict().items()}
    with torch.no_grad():
        for k, v in head.state_dict().items():
            name = k.replace("projection.", "token_rep_layer.projection.", 1) if k.startswith("projection.") else k
            state[name] = (v * scale if k.startswith("prompt_rep_layer.3.") else v).contiguous()
    save_file(state, str(out / "model.safetensors"))
    (out / "gliner_config.json").write_text(json.dumps(raw))
    return out
