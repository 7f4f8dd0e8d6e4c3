"""Reading sequence-classifier logits by what their labels mean: NLI entailment, cross-encoder relevance.

The entailment index comes from the model's `id2label` (a label starting with "entail", as transformers'
zero-shot pipeline reads `label2id`), never from its position. Zero-shot scores follow transformers'
`zero-shot-classification` pipeline: single-label = softmax of the entailment logits over the candidate
labels; multi-label (or a single candidate) = per label, softmax over (contradiction, entailment).
"""

from __future__ import annotations

import torch

from engine.errors import UnsupportedTask

DEFAULT_HYPOTHESIS = "This example is {}."
# Binary relevance classifiers name their positive class in various ways.
_RELEVANT = ("relevant", "positive", "yes", "true", "label_1", "1")


def entailment_index(labels: dict[int, str]) -> int | None:
    return next((i for i, name in sorted(labels.items()) if name.lower().startswith("entail")), None)


def contradiction_index(labels: dict[int, str], entailment: int) -> int:
    """The label named contradiction; else the pipeline's rule (index 0, or the last when entailment is 0)."""
    named = next((i for i, name in sorted(labels.items()) if name.lower().startswith("contradict")), None)
    if named is not None:
        return named
    return len(labels) - 1 if entailment == 0 else 0


def is_nli(labels: dict[int, str]) -> bool:
    return len(labels) >= 2 and entailment_index(labels) is not None


def hypotheses(template: str, labels: list[str]) -> list[str]:
    if "{}" not in template:
        raise ValueError("hypothesis_template must contain '{}' where the label goes, e.g. 'This example is {}.'")
    return [template.replace("{}", label, 1) for label in labels]


def zero_shot_scores(logits: torch.Tensor, labels: dict[int, str], multi_label: bool) -> torch.Tensor:
    """NLI logits [N, L, C] for N texts x L candidate labels -> scores [N, L]."""
    entail = entailment_index(labels)
    assert entail is not None
    if logits.shape[1] == 1:
        multi_label = True  # one candidate: entailment vs contradiction, as the pipeline does
    if not multi_label:
        return torch.softmax(logits[..., entail].float(), dim=-1)
    contra = contradiction_index(labels, entail)
    pair = logits[..., [contra, entail]].float()  # [N, L, 2]
    return torch.softmax(pair, dim=-1)[..., 1]


def relevance(logits: torch.Tensor, labels: dict[int, str]) -> torch.Tensor:
    """Cross-encoder logits [N, C] -> relevance [N]: sigmoid of a single logit (as sentence-transformers'
    CrossEncoder does); for an NLI head P(entailment); for two labels P(the positive one)."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0].float())
    probs = torch.softmax(logits.float(), dim=-1)
    entail = entailment_index(labels)
    if entail is not None:
        return probs[:, entail]
    positive = next((i for i, name in sorted(labels.items()) if name.lower() in _RELEVANT), None)
    if positive is None and logits.shape[1] == 2:
        positive = 1  # LABEL_0 / LABEL_1 style binary heads: class 1 is the positive class by convention
    if positive is None:
        raise UnsupportedTask(f"cannot tell which of this model's labels ({', '.join(labels.values())}) means "
                              "'relevant'; use a cross-encoder with one logit, an NLI model, or a binary classifier")
    return probs[:, positive]
