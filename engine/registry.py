"""Which HF architectures we implement: a table of strings, imported lazily.

Every entry has a parity test against transformers (tests/test_parity_*.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from engine.errors import UnsupportedArchitecture, UnsupportedTask


class Task(str, Enum):
    """What a loaded model computes."""

    EMBED = "embed"
    """One vector per input (pooling head)."""
    SEQUENCE_CLASSIFICATION = "sequence_classification"
    """Logits per input or input pair (cross-encoder relevance, NLI, classifiers)."""
    TOKEN_CLASSIFICATION = "token_classification"
    """Logits per token (NER)."""
    SPARSE_EMBED = "sparse_embed"
    """A SPLADE vector over the vocabulary per input (masked-LM head, log1p(relu), max over tokens)."""
    MULTI_VECTOR = "multi_vector"
    """L2-normalised ColBERT vectors per token, compared by MaxSim."""
    PARSE = "parse"
    """A linguistic pipeline (spaCy): entities, sentences, dependencies, noun chunks per text (engine.parse)."""
    ZERO_SHOT_NER = "zero_shot_ner"
    """Entity spans for labels given per request (GLiNER)."""


# A causal LM scored by its "yes"/"no" next-token logits (Qwen3-Reranker): a one-logit sequence classifier.
YES_NO_RERANK = "yes_no_rerank"

# Names a catalog entry or LoadOptions may use to override what an architecture computes by default
# (a *ForMaskedLM checkpoint is an encoder unless asked for SPLADE; a BertModel + Dense can be ColBERT;
# a *ForCausalLM can be a yes/no reranker).
TASK_OVERRIDES: dict[str, Task] = {
    "embed": Task.EMBED,
    "sparse": Task.SPARSE_EMBED,
    "sparse_embed": Task.SPARSE_EMBED,
    "multi_vector": Task.MULTI_VECTOR,
    YES_NO_RERANK: Task.SEQUENCE_CLASSIFICATION,
}


def task_override(name: str) -> Task:
    try:
        return TASK_OVERRIDES[name]
    except KeyError:
        raise UnsupportedTask(f"task {name!r} cannot be chosen at load; valid: {', '.join(TASK_OVERRIDES)}") from None


@dataclass(frozen=True)
class ArchitectureEntry:
    module: str  # under engine.models
    backbone: str  # class in that module
    task: Task

    def backbone_class(self) -> Any:
        return getattr(importlib.import_module(f"engine.models.{self.module}"), self.backbone)


ARCHITECTURES: dict[str, ArchitectureEntry] = {
    "BertModel": ArchitectureEntry("bert", "BertModel", Task.EMBED),
    "BertForMaskedLM": ArchitectureEntry("bert", "BertModel", Task.EMBED),
    "BertForPreTraining": ArchitectureEntry("bert", "BertModel", Task.EMBED),
    "BertForSequenceClassification": ArchitectureEntry("bert", "BertModel", Task.SEQUENCE_CLASSIFICATION),
    "BertForTokenClassification": ArchitectureEntry("bert", "BertModel", Task.TOKEN_CLASSIFICATION),
    # colbert-ir checkpoints (colbertv2.0): `bert.*` plus a bias-free `linear` projection.
    "HF_ColBERT": ArchitectureEntry("bert", "BertModel", Task.MULTI_VECTOR),
    "RobertaModel": ArchitectureEntry("roberta", "RobertaModel", Task.EMBED),
    "RobertaForMaskedLM": ArchitectureEntry("roberta", "RobertaModel", Task.EMBED),
    "RobertaForSequenceClassification": ArchitectureEntry("roberta", "RobertaModel", Task.SEQUENCE_CLASSIFICATION),
    "RobertaForTokenClassification": ArchitectureEntry("roberta", "RobertaModel", Task.TOKEN_CLASSIFICATION),
    "XLMRobertaModel": ArchitectureEntry("roberta", "RobertaModel", Task.EMBED),
    "XLMRobertaForMaskedLM": ArchitectureEntry("roberta", "RobertaModel", Task.EMBED),
    "XLMRobertaForSequenceClassification": ArchitectureEntry("roberta", "RobertaModel", Task.SEQUENCE_CLASSIFICATION),
    "XLMRobertaForTokenClassification": ArchitectureEntry("roberta", "RobertaModel", Task.TOKEN_CLASSIFICATION),
    "CamembertModel": ArchitectureEntry("roberta", "RobertaModel", Task.EMBED),
    "CamembertForMaskedLM": ArchitectureEntry("roberta", "RobertaModel", Task.EMBED),
    "CamembertForSequenceClassification": ArchitectureEntry("roberta", "RobertaModel", Task.SEQUENCE_CLASSIFICATION),
    "CamembertForTokenClassification": ArchitectureEntry("roberta", "RobertaModel", Task.TOKEN_CLASSIFICATION),
    "DistilBertModel": ArchitectureEntry("distilbert", "DistilBertModel", Task.EMBED),
    "DistilBertForMaskedLM": ArchitectureEntry("distilbert", "DistilBertModel", Task.EMBED),
    "DistilBertForSequenceClassification": ArchitectureEntry("distilbert", "DistilBertModel",
                                                             Task.SEQUENCE_CLASSIFICATION),
    "DistilBertForTokenClassification": ArchitectureEntry("distilbert", "DistilBertModel",
                                                          Task.TOKEN_CLASSIFICATION),
    "ModernBertModel": ArchitectureEntry("modernbert", "ModernBertModel", Task.EMBED),
    "ModernBertForMaskedLM": ArchitectureEntry("modernbert", "ModernBertModel", Task.EMBED),
    "ModernBertForSequenceClassification": ArchitectureEntry("modernbert", "ModernBertModel",
                                                             Task.SEQUENCE_CLASSIFICATION),
    "ModernBertForTokenClassification": ArchitectureEntry("modernbert", "ModernBertModel",
                                                          Task.TOKEN_CLASSIFICATION),
    "MPNetModel": ArchitectureEntry("mpnet", "MPNetModel", Task.EMBED),
    "MPNetForMaskedLM": ArchitectureEntry("mpnet", "MPNetModel", Task.EMBED),
    "MPNetForSequenceClassification": ArchitectureEntry("mpnet", "MPNetModel", Task.SEQUENCE_CLASSIFICATION),
    "MPNetForTokenClassification": ArchitectureEntry("mpnet", "MPNetModel", Task.TOKEN_CLASSIFICATION),
    "DebertaV2Model": ArchitectureEntry("deberta_v2", "DebertaV2Model", Task.EMBED),
    "DebertaV2ForMaskedLM": ArchitectureEntry("deberta_v2", "DebertaV2Model", Task.EMBED),
    "DebertaV2ForSequenceClassification": ArchitectureEntry("deberta_v2", "DebertaV2Model",
                                                            Task.SEQUENCE_CLASSIFICATION),
    "DebertaV2ForTokenClassification": ArchitectureEntry("deberta_v2", "DebertaV2Model", Task.TOKEN_CLASSIFICATION),
    # NomicBERT and GTE "new": transformers' names, and the remote-code names checkpoints ship with.
    "NomicBertModel": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.EMBED),
    "NomicBertForMaskedLM": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.EMBED),
    "NomicBertForPreTraining": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.EMBED),
    "NomicBertForSequenceClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel",
                                                            Task.SEQUENCE_CLASSIFICATION),
    "NomicBertForTokenClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.TOKEN_CLASSIFICATION),
    "GteModel": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.EMBED),
    "GteForMaskedLM": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.EMBED),
    "GteForSequenceClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.SEQUENCE_CLASSIFICATION),
    "GteForTokenClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.TOKEN_CLASSIFICATION),
    "NewModel": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.EMBED),
    "NewForMaskedLM": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.EMBED),
    "NewForSequenceClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.SEQUENCE_CLASSIFICATION),
    "NewForTokenClassification": ArchitectureEntry("rotary_bert", "RotaryBertModel", Task.TOKEN_CLASSIFICATION),
    "Qwen3Model": ArchitectureEntry("qwen3", "Qwen3Model", Task.EMBED),
    "Qwen3ForCausalLM": ArchitectureEntry("qwen3", "Qwen3Model", Task.EMBED),
    "Qwen2Model": ArchitectureEntry("qwen3", "Qwen3Model", Task.EMBED),
    "Qwen2ForCausalLM": ArchitectureEntry("qwen3", "Qwen3Model", Task.EMBED),
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


# Architectures whose checkpoints carry the masked-LM head that SPLADE needs.
_MLM_SUFFIXES = ("ForMaskedLM", "ForPreTraining")


def heads(arch: str) -> list[Task]:
    """What an architecture's checkpoints can compute: its default task first, then the tasks a catalog
    entry or LoadOptions.task may choose (SPLADE from a masked-LM head; ColBERT from a bare backbone with
    a PyLate Dense projection; yes/no reranking from a causal LM's head)."""
    entry = ARCHITECTURES[arch]
    tasks = [entry.task]
    if arch.endswith(_MLM_SUFFIXES) and hasattr(entry.backbone_class(), "mlm_head"):
        tasks.append(Task.SPARSE_EMBED)
    if arch.endswith("ForCausalLM") and hasattr(entry.backbone_class(), "yes_no_head"):
        tasks.append(Task.SEQUENCE_CLASSIFICATION)
    if arch.endswith("Model") and Task.MULTI_VECTOR not in tasks:
        tasks.append(Task.MULTI_VECTOR)
    return tasks


def families() -> dict[str, dict[str, list[str]]]:
    """family (engine.models module) -> architecture -> the heads it can run, for listings."""
    out: dict[str, dict[str, list[str]]] = {}
    for arch in sorted(ARCHITECTURES):
        out.setdefault(ARCHITECTURES[arch].module, {})[arch] = [t.value for t in heads(arch)]
    return out
