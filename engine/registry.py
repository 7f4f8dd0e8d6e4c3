"""Which HF architectures we implement: a table of strings, imported lazily.

Every entry has a parity test against transformers (tests/test_parity_*.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from engine.errors import UnsupportedArchitecture
from engine.heads.specs import HEADS, Head
from engine.tasks import Task


@dataclass(frozen=True)
class ArchitectureEntry:
    module: str  # under engine.models
    backbone: str  # class in that module
    heads: tuple[Head, ...]  # what its checkpoints can be loaded as; the first is the default

    @property
    def default_head(self) -> Head:
        return self.heads[0]

    @property
    def task(self) -> Task:
        return HEADS[self.default_head].task

    def backbone_class(self) -> Any:
        return getattr(importlib.import_module(f"engine.models.{self.module}"), self.backbone)


ARCHITECTURES: dict[str, ArchitectureEntry] = {
    "BertModel": ArchitectureEntry("bert", "BertModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "BertForMaskedLM": ArchitectureEntry("bert", "BertModel", (Head.EMBED, Head.SPARSE)),
    "BertForPreTraining": ArchitectureEntry("bert", "BertModel", (Head.EMBED, Head.SPARSE)),
    "BertForSequenceClassification": ArchitectureEntry("bert", "BertModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "BertForTokenClassification": ArchitectureEntry("bert", "BertModel", (Head.TOKEN_CLASSIFICATION,)),
    # colbert-ir checkpoints (colbertv2.0): `bert.*` plus a bias-free `linear` projection.
    "HF_ColBERT": ArchitectureEntry("bert", "BertModel", (Head.MULTI_VECTOR,)),
    "RobertaModel": ArchitectureEntry("roberta", "RobertaModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "RobertaForMaskedLM": ArchitectureEntry("roberta", "RobertaModel", (Head.EMBED, Head.SPARSE)),
    "RobertaForSequenceClassification": ArchitectureEntry("roberta", "RobertaModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "RobertaForTokenClassification": ArchitectureEntry("roberta", "RobertaModel", (Head.TOKEN_CLASSIFICATION,)),
    "XLMRobertaModel": ArchitectureEntry("roberta", "RobertaModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "XLMRobertaForMaskedLM": ArchitectureEntry("roberta", "RobertaModel", (Head.EMBED, Head.SPARSE)),
    "XLMRobertaForSequenceClassification": ArchitectureEntry("roberta", "RobertaModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "XLMRobertaForTokenClassification": ArchitectureEntry("roberta", "RobertaModel", (Head.TOKEN_CLASSIFICATION,)),
    "CamembertModel": ArchitectureEntry("roberta", "RobertaModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "CamembertForMaskedLM": ArchitectureEntry("roberta", "RobertaModel", (Head.EMBED, Head.SPARSE)),
    "CamembertForSequenceClassification": ArchitectureEntry("roberta", "RobertaModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "CamembertForTokenClassification": ArchitectureEntry("roberta", "RobertaModel", (Head.TOKEN_CLASSIFICATION,)),
    "DistilBertModel": ArchitectureEntry("distilbert", "DistilBertModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "DistilBertForMaskedLM": ArchitectureEntry("distilbert", "DistilBertModel", (Head.EMBED, Head.SPARSE)),
    "DistilBertForSequenceClassification": ArchitectureEntry("distilbert", "DistilBertModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "DistilBertForTokenClassification": ArchitectureEntry("distilbert", "DistilBertModel", (Head.TOKEN_CLASSIFICATION,)),
    "ModernBertModel": ArchitectureEntry("modernbert", "ModernBertModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "ModernBertForMaskedLM": ArchitectureEntry("modernbert", "ModernBertModel", (Head.EMBED, Head.SPARSE)),
    "ModernBertForSequenceClassification": ArchitectureEntry("modernbert", "ModernBertModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "ModernBertForTokenClassification": ArchitectureEntry("modernbert", "ModernBertModel", (Head.TOKEN_CLASSIFICATION,)),
    "MPNetModel": ArchitectureEntry("mpnet", "MPNetModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "MPNetForMaskedLM": ArchitectureEntry("mpnet", "MPNetModel", (Head.EMBED, Head.SPARSE)),
    "MPNetForSequenceClassification": ArchitectureEntry("mpnet", "MPNetModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "MPNetForTokenClassification": ArchitectureEntry("mpnet", "MPNetModel", (Head.TOKEN_CLASSIFICATION,)),
    "DebertaV2Model": ArchitectureEntry("deberta_v2", "DebertaV2Model", (Head.EMBED, Head.MULTI_VECTOR)),
    "DebertaV2ForMaskedLM": ArchitectureEntry("deberta_v2", "DebertaV2Model", (Head.EMBED,)),
    "DebertaV2ForSequenceClassification": ArchitectureEntry("deberta_v2", "DebertaV2Model", (Head.SEQUENCE_CLASSIFICATION,)),
    "DebertaV2ForTokenClassification": ArchitectureEntry("deberta_v2", "DebertaV2Model", (Head.TOKEN_CLASSIFICATION,)),
    # NomicBERT and GTE "new": transformers' names, and the remote-code names checkpoints ship with.
    "NomicBertModel": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "NomicBertForMaskedLM": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.EMBED,)),
    "NomicBertForPreTraining": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.EMBED,)),
    "NomicBertForSequenceClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "NomicBertForTokenClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.TOKEN_CLASSIFICATION,)),
    "GteModel": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "GteForMaskedLM": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.EMBED,)),
    "GteForSequenceClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "GteForTokenClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.TOKEN_CLASSIFICATION,)),
    "NewModel": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.EMBED, Head.MULTI_VECTOR)),
    "NewForMaskedLM": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.EMBED,)),
    "NewForSequenceClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.SEQUENCE_CLASSIFICATION,)),
    "NewForTokenClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", (Head.TOKEN_CLASSIFICATION,)),
    "Qwen3Model": ArchitectureEntry("qwen3", "Qwen3Model", (Head.EMBED, Head.MULTI_VECTOR)),
    "Qwen3ForCausalLM": ArchitectureEntry("qwen3", "Qwen3Model", (Head.EMBED, Head.YES_NO_RERANK)),
    "Qwen2Model": ArchitectureEntry("qwen3", "Qwen3Model", (Head.EMBED, Head.MULTI_VECTOR)),
    "Qwen2ForCausalLM": ArchitectureEntry("qwen3", "Qwen3Model", (Head.EMBED, Head.YES_NO_RERANK)),
}

# When config.json has no `architectures`, its model_type picks the bare backbone.
MODEL_TYPES: dict[str, str] = {
    "bert": "BertModel",
    "roberta": "RobertaModel",
    "xlm-roberta": "XLMRobertaModel",
    "camembert": "CamembertModel",
    "distilbert": "DistilBertModel",
    "modernbert": "ModernBertModel",
    "mpnet": "MPNetModel",
    "deberta-v2": "DebertaV2Model",
    "nomic_bert": "NomicBertModel",
    "gte": "GteModel",
    "new": "NewModel",
    "qwen3": "Qwen3Model",
    "qwen2": "Qwen2Model",
}


def supported_architectures() -> list[str]:
    return sorted(ARCHITECTURES)


def resolve(hf_config: dict[str, Any]) -> tuple[str, ArchitectureEntry]:
    """The (architecture name, entry) for a config.json, or UnsupportedArchitecture listing ours."""
    archs = hf_config.get("architectures") or []
    for arch in archs:
        if arch in ARCHITECTURES:
            return arch, ARCHITECTURES[arch]
    model_type = hf_config.get("model_type")
    if not archs and model_type in MODEL_TYPES:
        arch = MODEL_TYPES[model_type]
        return arch, ARCHITECTURES[arch]
    got = ", ".join(archs) if archs else f"model_type={model_type!r}"
    raise UnsupportedArchitecture(
        f"architecture {got} is not supported; supported: {', '.join(supported_architectures())}")


def heads(arch: str) -> list[Head]:
    """What an architecture's checkpoints can be loaded as: its default head first, then the heads a catalog
    entry or LoadOptions.head may choose (SPLADE from a masked-LM checkpoint, ColBERT from a bare backbone
    with a projection, yes/no reranking from a causal LM's head)."""
    return list(ARCHITECTURES[arch].heads)


def families() -> dict[str, dict[str, list[str]]]:
    """family (engine.models module) -> architecture -> the heads it can run, for listings."""
    out: dict[str, dict[str, list[str]]] = {}
    for arch in sorted(ARCHITECTURES):
        out.setdefault(ARCHITECTURES[arch].module, {})[arch] = [h.value for h in heads(arch)]
    return out
