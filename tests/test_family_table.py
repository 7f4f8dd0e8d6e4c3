"""Every family from one table (tests/families.py): each registry architecture has a case, and each family's
backbone, served by a real Engine, matches transformers' hidden states (fp32, max abs ≤ 1e-4) on texts of
2 to 300+ tokens."""

from __future__ import annotations

import pytest
import transformers

from engine.registry import ARCHITECTURES
from tests.families import FAMILIES
from tests.reference import engine_hidden, max_abs, reference_hidden, serve


def test_every_architecture_has_a_case():
    missing = [arch for arch, entry in ARCHITECTURES.items()
               if not any(case.module == entry.module and arch.startswith(case.covers) for case in FAMILIES.values())]
    assert not missing, f"architectures without a family case in tests/families.py: {missing}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_hidden_states_match_transformers(make_hf_model, texts, family):
    case = FAMILIES[family]
    path = case.make(make_hf_model)
    hf = getattr(transformers, case.hf_class).from_pretrained(path, attn_implementation="eager").eval()
    ours = serve(path)
    encoded = ours.tokenizer.encode(texts)
    assert max(len(e) for e in encoded) >= 300 and min(len(e) for e in encoded) <= 3
    for got, want in zip(engine_hidden(ours.model, encoded), reference_hidden(hf, encoded, **case.pad), strict=True):
        assert max_abs(got, want) <= 1e-4, family
