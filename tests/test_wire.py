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


def _results():
    from tools.schemas import ClassifyResult, EmbedResult, EntitiesResult, RerankResult, SparseEmbedding

    vectors = torch.nn.functional.normalize(torch.randn(2, 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    dense = EmbedResult(model="m", representation="dense", dimensions=16, normalized=True, embeddings=vectors,
                        token_counts=[3, 4], truncated=[False, True])
    sparse = EmbedResult(model="s", representation="sparse", dimensions=30522, normalized=False, embeddings=[],
                         sparse_embeddings=[SparseEmbedding(token_ids=[7, 3], weights=torch.tensor([1.5, 0.1]),
                                                            tokens=["fox", "dog"])],
                         token_counts=[2], truncated=[False])
    multi = EmbedResult(model="c", representation="multi_vector", dimensions=16, normalized=True, embeddings=[],
                        multi_vector_embeddings=[vectors[:1], vectors.to(torch.bfloat16)], token_counts=[1, 2],
                        truncated=[False, False])
    return [dense, sparse, multi,
            RerankResult.model_validate({"model": "r", "method": "embedding-cosine", "truncated": [False, True],
                                         "results": [{"index": 1, "score": 0.25, "text": "b"},
                                                     {"index": 0, "score": 1e-7, "text": "a"}]}),
            EntitiesResult.model_validate({"model": "n", "truncated": [False], "entities": [
                [{"text": "Ada", "label": "PER", "score": 0.875, "start": 0, "end": 3}]]}),
            ClassifyResult.model_validate({"model": "k", "method": "embedding-similarity", "results": [
                [{"label": "Laptops", "path": ["Electronics", "Laptops"], "score": 0.5}]]})]


def test_dumps_writes_what_pydantic_writes_in_one_pass():
    """`tools.wire.dumps` (HTTP bodies, MCP answers) and pydantic (the SDK's own paths) give the same JSON
    for every kind of result, and float32 arrays go out as their float32 values bit for bit."""
    from tools.wire import dumps

    for result in _results():
        assert json.loads(dumps(result)) == json.loads(result.model_dump_json()) == result.model_dump(mode="json")
    dense = _results()[0]
    written = np.asarray(json.loads(dumps(dense))["embeddings"], dtype=np.float32)
    assert np.array_equal(written, dense.embeddings) and dense.embeddings.dtype == np.float32


def test_float32_fields_keep_the_list_schema():
    from tools.schemas import EmbedResult, SparseEmbedding

    props = EmbedResult.model_json_schema()["properties"]
    assert props["embeddings"]["items"] == {"type": "array", "items": {"type": "number"}}
    assert SparseEmbedding.model_json_schema()["properties"]["weights"]["items"] == {"type": "number"}


def test_float32_fields_refuse_what_json_cannot_hold_or_the_schema_does_not_say():
    import pytest
    from pydantic import ValidationError

    from tools.schemas import EmbedResult

    def dense(embeddings):
        return EmbedResult(model="m", representation="dense", dimensions=2, normalized=True, embeddings=embeddings,
                           token_counts=[1], truncated=[False])

    assert dense([[0.5, 0.25]]).embeddings.dtype == np.float32
    assert dense([]).embeddings.size == 0  # no dense vectors (sparse and multi-vector results)
    for bad in ([[float("nan"), 0.0]], [[float("inf"), 0.0]], [0.5, 0.25], [[[0.5]]], None, "0.5", [{"a": 1}]):
        with pytest.raises(ValidationError):
            dense(bad)
