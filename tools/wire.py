"""Numbers as they go out in results (MCP and HTTP alike), and the one writer of result JSON.

Vectors are float32 inside the engine and stay float32 numpy arrays inside the result models
(`Float32Vector`, `Float32Rows`): no Python float is made for them on the hot path. `dumps` writes a
result (a model, or plain data holding models and arrays) in one compiled pass: orjson writes each
float32 with its shortest round-trip decimal (`0.025945606`, not the float64 widening
`0.02594560571014881`), about 40 % fewer bytes than 17-digit decimals and the same float32 values bit
for bit when read back. Serializing those results with pydantic (`model_dump`, `model_dump_json`: what
the MCP SDK does on its own paths) gives the same JSON through `float32_values`. Per embed call this
saved three walks over every number (Python floats made, validated, formatted) on the event loop, CPU
that a 2-core server takes from the forward pass (docs/benchmarks.md, issue 4).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, cast

import numpy as np
import orjson
from pydantic import BaseModel, PlainSerializer, PlainValidator, WithJsonSchema

if TYPE_CHECKING:
    import torch


def float32_values(values: torch.Tensor | np.ndarray | Sequence[float]) -> list[Any]:
    """Nested lists of Python floats (same shape), each the shortest decimal of its float32 value."""
    array = as_float32(values)
    # orjson formats float32 with the shortest round-trip repr (ryu); reading it back gives those decimals.
    return orjson.loads(orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY))


def as_float32(values: torch.Tensor | np.ndarray | Sequence[Any]) -> np.ndarray:
    """A C-contiguous float32 numpy array of `values` (a tensor of any dtype and device, an array, lists)."""
    torch_module = sys.modules.get("torch")  # a tensor exists only where torch was imported: no import here
    if torch_module is not None and isinstance(values, torch_module.Tensor):
        values = cast(Any, values).detach().to("cpu", torch_module.float32).numpy()
    return np.ascontiguousarray(values, dtype=np.float32)


def _float32_validator(depth: int) -> Callable[[Any], np.ndarray]:
    def validate(values: Any) -> np.ndarray:
        try:
            array = as_float32(values)
        except (TypeError, ValueError) as e:
            raise ValueError(f"expected {depth}-d numbers: {e}") from None
        if array.size and array.ndim != depth:  # an empty list stands for "none" (e.g. no dense vectors)
            raise ValueError(f"expected {depth}-d numbers, got shape {array.shape}")
        if not np.isfinite(array).all():  # JSON has no NaN or inf (they would go out as null)
            raise ValueError("vectors must be finite")
        return array

    return validate


def _nested_numbers_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


# Result fields holding float32 arrays of 1 and 2 dimensions; JSON: nested arrays of numbers (the JSON Schema
# of list[float] and list[list[float]]).
Float32Vector: TypeAlias = Annotated[np.ndarray, PlainValidator(_float32_validator(1)), PlainSerializer(float32_values),
                                     WithJsonSchema(_nested_numbers_schema(1))]
Float32Rows: TypeAlias = Annotated[np.ndarray, PlainValidator(_float32_validator(2)), PlainSerializer(float32_values),
                                   WithJsonSchema(_nested_numbers_schema(2))]


def _model_fields(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        # Field values in declaration order: what model_dump_json writes for our plain result models.
        return vars(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """JSON for a result model, or plain data holding models and float32 arrays, in one compiled pass."""
    return orjson.dumps(value, default=_model_fields, option=orjson.OPT_SERIALIZE_NUMPY)
