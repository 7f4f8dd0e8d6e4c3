"""engine.models.layers.Linear: oneDNN's linear primitive (fused activation, fused residual add, packed
weights) computes what F.linear + the activation / add computes, and falls back where it cannot run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.models.layers import ACTIVATIONS, Linear, pack_linear_weights


def _linear(n_in: int = 48, n_out: int = 80, bias: bool = True, dtype: torch.dtype = torch.float32) -> Linear:
    torch.manual_seed(0)
    return Linear(n_in, n_out, bias=bias).to(dtype).eval()


def _reference(lin: Linear, x: torch.Tensor) -> torch.Tensor:
    weight = lin.weight.to_dense() if lin.weight.is_mkldnn else lin.weight
    return F.linear(x.double(), weight.double(), None if lin.bias is None else lin.bias.double())


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("rows", [1, 7, 300])
def test_forward_matches_reference_fp32(packed: bool, bias: bool, rows: int) -> None:
    lin = _linear(bias=bias)
    if packed:
        assert lin.pack()
        assert lin.weight.is_mkldnn
    x = torch.randn(rows, 48)
    with torch.inference_mode():
        assert (lin(x).double() - _reference(lin, x)).abs().max() < 1e-5


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed"])
def test_activated_equals_activation_of_output(act: str, packed: bool) -> None:
    lin = _linear()
    if packed:
        lin.pack()
    x = torch.randn(33, 48)
    with torch.inference_mode():
        got = lin.activated(x, act)
        want = ACTIVATIONS[act](_reference(lin, x))
    assert (got.double() - want).abs().max() < 1e-5


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed"])
def test_plus_adds_residual_without_writing_it(packed: bool) -> None:
    lin = _linear()
    if packed:
        lin.pack()
    x, residual = torch.randn(21, 48), torch.randn(21, 80)
    kept = residual.clone()
    with torch.inference_mode():
        got = lin.plus(x, residual)
    assert (got.double() - (_reference(lin, x) + residual.double())).abs().max() < 1e-5
    assert torch.equal(residual, kept)


def test_bf16_close_to_fp32() -> None:
    lin = _linear(dtype=torch.bfloat16)
    lin.pack()
    x = torch.randn(64, 48).bfloat16()
    with torch.inference_mode():
        got = lin.activated(x, "gelu").double()
    want = F.gelu(_reference(lin, x))
    assert got.dtype == torch.float64 and (got - want).abs().max() < 0.05  # one bf16 rounding of O(1) values


def test_other_dtypes_take_the_plain_path() -> None:
    lin = _linear(dtype=torch.float64)  # oneDNN's linear takes fp32/bf16 only
    assert not lin.pack()
    x = torch.randn(5, 48, dtype=torch.float64)
    with torch.inference_mode():
        assert (lin(x) - _reference(lin, x)).abs().max() < 1e-12
        assert (lin.activated(x, "gelu_new") - F.gelu(_reference(lin, x), approximate="tanh")).abs().max() < 1e-12


def test_packed_weight_unpacks_for_the_plain_path() -> None:
    lin = _linear()
    plain = lin.weight.detach().clone()
    lin.pack()
    assert torch.equal(lin.weight.to_dense(), plain)
    x = torch.randn(9, 48)
    with torch.inference_mode():
        assert (lin._plain(x).double() - _reference(lin, x)).abs().max() < 1e-5


def test_pack_skips_shared_weights_and_non_cpu_dtypes() -> None:
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(80, 48)
    tied = Linear(48, 80)
    tied.weight = embedding.weight  # a decoder tied to the embedding table (SPLADE heads)
    own = Linear(48, 48)
    model = torch.nn.ModuleDict({"emb": embedding, "tied": tied, "own": own})
    assert pack_linear_weights(model) == 1
    assert own.weight.is_mkldnn and not tied.weight.is_mkldnn
    assert tied.weight is embedding.weight
    half = Linear(8, 8).half()
    assert not half.pack() and not half.weight.is_mkldnn
