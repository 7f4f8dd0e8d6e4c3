"""Rerankers that are causal LMs answering "yes" or "no" (Qwen3-Reranker).

The model reads one prompt per (query, document) pair and the relevance is P("yes") at the next token,
normalised over the two answers: softmax([logit_no, logit_yes])[yes] = sigmoid(logit_yes - logit_no).
The head computes only the two LM-head rows it needs, on the last token of each sequence (never the
[T, vocab] logits), and returns the one logit `yes - no` as [B, 1], so the sigmoid that the rerank tool
applies to a one-label cross-encoder yields exactly that probability.

The prompt is applied as a pair template (`engine.tokenization.PairTemplate`): the text after
`{document}` is tokenised on its own and always kept, and a long input is truncated inside the document,
as the model card does by truncating the middle part before adding its fixed suffix. The last token is
then the assistant prefix, where the model answers.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.batch import PackedBatch
from engine.errors import ModelLoadError

# Qwen3-Reranker's prompt, from its model card (Qwen/Qwen3-Reranker-0.6B README, "Transformers Usage"):
#   prefix = system message + "<|im_start|>user\n"
#   format_instruction(instruction, query, doc) = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
#   suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"  (an empty think block)
# with the card's default instruction. The catalog entry carries the same string (a test keeps them equal);
# a copy of the entry with another instruction is how a deployment customises it.
QWEN3_RERANKER_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QWEN3_RERANKER_TEMPLATE = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
    f"<Instruct>: {QWEN3_RERANKER_INSTRUCTION}\n<Query>: {{query}}\n<Document>: {{document}}"
    "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
)


class YesNoHead(nn.Module):
    """Last token's state -> the LM head's "yes" and "no" rows -> [B, 1] = logit_yes - logit_no (fp32).

    `rows.weight` [2, C] holds the (yes, no) rows of `lm_head.weight`, or of the input embeddings when the
    checkpoint ties them (`tie_word_embeddings`); `convert_state_dict` selects them at load."""

    def __init__(self, hidden: int, yes_id: int, no_id: int, tied_source: str | None = None) -> None:
        super().__init__()
        self.token_ids = (yes_id, no_id)
        self.rows = nn.Linear(hidden, 2, bias=False)
        # An instance attribute: the checkpoint's lm_head.weight is routed to this head, and only a tied
        # checkpoint may omit it (it then comes from the backbone's input embeddings).
        self.tied_weights = {"lm_head.weight": (tied_source,) if tied_source else ()}

    def convert_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """lm_head.weight [V, C] -> rows.weight [2, C] (reads two rows of the mmap'd matrix)."""
        if "lm_head.weight" not in state:
            raise ModelLoadError("the yes/no head needs the LM head: the checkpoint has no lm_head.weight and "
                                 "its config does not tie it to the input embeddings (tie_word_embeddings)")
        weight = state.pop("lm_head.weight").detach()
        vocab = weight.shape[0]
        for name, i in zip(("yes", "no"), self.token_ids, strict=True):
            if not 0 <= i < vocab:
                raise ModelLoadError(f"the {name!r} token id {i} is outside the LM head's {vocab} rows")
        return {**state, "rows.weight": weight[list(self.token_ids)]}  # a copy of two rows

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        last = hidden[batch.cu_seqlens[1:].to(hidden.device).long() - 1]  # [B, C]
        logits = self.rows(last).float()  # [B, 2]: (yes, no)
        return logits[:, :1] - logits[:, 1:]  # [B, 1]
