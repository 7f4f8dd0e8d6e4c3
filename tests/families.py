"""The table of families every cross-family suite runs over: CPU parity (tests/test_family_table.py) and CUDA
(tests/gpu/test_cuda_families.py). A registry architecture without a case here fails
`test_every_architecture_has_a_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.test_parity_deberta_v2 import _make as make_deberta
from tests.test_parity_distilbert import _make as make_distilbert
from tests.test_parity_modernbert import _make as make_modernbert
from tests.test_parity_mpnet import _make as make_mpnet
from tests.test_parity_qwen3 import _make as make_qwen
from tests.test_parity_roberta import PAD as ROBERTA_PAD
from tests.test_parity_roberta import _make as make_roberta
from tests.test_parity_rotary_bert import _make as make_rotary_bert


@dataclass(frozen=True)
class FamilyCase:
    module: str  # engine.models module (registry.ArchitectureEntry.module)
    make: Callable[[Any], Path]  # make_hf_model fixture -> a tiny random checkpoint dir
    hf_class: str  # the transformers reference class for its hidden states
    pad: dict[str, Any] = field(default_factory=dict)  # reference padding arguments
    covers: tuple[str, ...] = ()  # architecture-name prefixes whose heads its parity module tests


FAMILIES: dict[str, FamilyCase] = {
    "bert": FamilyCase("bert", lambda m: m("BertModel"), "BertModel", covers=("Bert", "HF_ColBERT")),
    "xlm-roberta": FamilyCase("roberta", lambda m: make_roberta(m, "XLMRoberta"), "XLMRobertaModel",
                              {"pad_id": ROBERTA_PAD, "token_types": False},
                              covers=("Roberta", "XLMRoberta", "Camembert")),
    "distilbert": FamilyCase("distilbert", make_distilbert, "DistilBertModel", {"token_types": False},
                             covers=("DistilBert",)),
    "mpnet": FamilyCase("mpnet", make_mpnet, "MPNetModel", {"pad_id": 1, "token_types": False}, covers=("MPNet",)),
    "modernbert": FamilyCase("modernbert", make_modernbert, "ModernBertModel", {"token_types": False},
                             covers=("ModernBert",)),
    "qwen3": FamilyCase("qwen3", make_qwen, "Qwen3Model", {"token_types": False}, covers=("Qwen3",)),
    "qwen2": FamilyCase("qwen3", lambda m: make_qwen(m, "Qwen2"), "Qwen2Model", {"token_types": False},
                        covers=("Qwen2",)),
    "deberta-v3": FamilyCase("deberta_v2", make_deberta, "DebertaV2Model", covers=("DebertaV2",)),
    "nomic-bert": FamilyCase("rotary_bert", lambda m: make_rotary_bert(m, "NomicBert"), "NomicBertModel",
                             covers=("NomicBert",)),
    "gte": FamilyCase("rotary_bert", lambda m: make_rotary_bert(m, "Gte"), "GteModel", covers=("Gte", "New")),
}
