# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
"""Argument types of the collection tools: documents with metadata, and metadata filters (tools/vector_store.py
enforces the same with its own messages). TypedDicts, so handlers receive plain dicts; their names end in "Object", which error locations leave out
(sie_mcp/errors.py: pydantic names a union member by its class)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema
from typing_extensions import NotRequired, TypedDict

from sie_mcp.declare import DEFINITION
from sie_mcp.tooldefs._types import Text
from tools.context import Limits

FieldName = Annotated[str, StringConstraints(max_length=100, pattern="^[^_$]")]  # the pattern needs a character
Int64 = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
Number = Annotated[float, Field(strict=True)]
# A metadata value: Chroma stores strings, booleans, 64-bit integers and floats (a larger integer is a float).


def _not_an_integer(value: Any) -> Any:
    if isinstance(value, int):  # an integer beyond 64 bits (a smaller one matched Int64 first)
        raise ValueError("an integer beyond 64 bits: Chroma stores 64-bit integers; send it as a string")
    return value


Fraction = Annotated[Number, BeforeValidator(_not_an_integer)]
# A metadata value: Chroma stores strings, booleans, 64-bit integers and floats; stated once in a schema.
Scalar = Annotated[
    Annotated[str, Field(strict=True)] | Annotated[bool, Field(strict=True)] | Int64 | Fraction,
    WithJsonSchema({DEFINITION: "Scalar", "anyOf": [
        {"type": ["string", "boolean"]}, {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        {"type": "number", "not": {"type": "integer"}}]})]
OneKind = Annotated[Annotated[list[Annotated[str, Field(strict=True)]], Field(min_length=1)]
                    | Annotated[list[Int64 | Fraction], Field(min_length=1)]
                    | Annotated[list[Annotated[bool, Field(strict=True)]], Field(min_length=1)],
                    WithJsonSchema({DEFINITION: "OneKind", "type": "array", "minItems": 1, "anyOf": [
                        {"items": {"type": "string"}}, {"items": {"type": "number"}},
                        {"items": {"type": "boolean"}}]})]

OperatorsObject = TypedDict("OperatorsObject", {  # type: ignore[misc]
    "$eq": NotRequired[Scalar], "$ne": NotRequired[Scalar], "$gt": NotRequired[Number],
    "$gte": NotRequired[Number], "$lt": NotRequired[Number], "$lte": NotRequired[Number],
    "$in": NotRequired[OneKind], "$nin": NotRequired[OneKind]})
OperatorsObject.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]

Filter = Annotated[dict[FieldName, Scalar | OperatorsObject], Field(
    description="Metadata, ANDed: {'brand': 'Acme', 'price': {'$lt': 100}}")]


def Document(limits: Limits) -> Any:
    class DocumentObject(TypedDict):
        __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
        text: Text(limits)  # type: ignore[valid-type]
        id: NotRequired[Annotated[str, StringConstraints(min_length=1, max_length=256)] | None]
        metadata: NotRequired[dict[FieldName, Scalar] | None]

    return DocumentObject
