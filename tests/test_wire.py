"""Numbers in results: float32 values written with their shortest decimals (tools/wire.py)."""

from __future__ import annotations

import json

import numpy as np
import torch

from tools.wire import float32_values


def test_float32_values_keep_every_float32_bit_in_fewer_bytes():
    vectors = torch.nn.functional.normalize(torch.randn(3, 384, generator=torch.Generator().manual_seed(0)), dim=-1)
    out = float32_values(vectors)
    assert len(out) == 3 and all(len(row) == 384 for row in out)
    assert np.array_equal(np.asarray(out, dtype=np.float32), vectors.numpy())  # bit for bit
    assert len(json.dumps(out)) < 0.7 * len(json.dumps(vectors.tolist()))
    assert float32_values(torch.tensor([0.1])) == [0.1]  # not 0.10000000149011612


def test_float32_values_take_any_dtype_shape_and_plain_lists():
    assert float32_values(torch.tensor([0.5, -2.0], dtype=torch.bfloat16)) == [0.5, -2.0]
    assert float32_values([0.25, 1e-30]) == [0.25, 1e-30]
    assert float32_values(torch.ones(2, 2, 2)) == [[[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]]
    assert float32_values(torch.ones(4)[::2]) == [1.0, 1.0]  # non-contiguous
