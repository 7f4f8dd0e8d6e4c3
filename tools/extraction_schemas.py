"""Typed results of the GLiNER2 tools: extract_relations and extract (entities and classify reuse
tools.schemas' EntitiesResult and ClassifyResult)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tools.schemas import Score, ToolResult

MAX_NAMES = 100  # labels, relation types, structures, or fields of one structure, per call
MAX_NAME_CHARS = 200


class SpanRef(BaseModel):
    text: str = Field(description="The span's text, exactly as in the input")
    start: int = Field(description="Character offset where it starts in the input text")
    end: int = Field(description="Character offset one past its end")
    score: Score = Field(description="The span's probability, 4 decimals")


class Relation(BaseModel):
    relation: str = Field(description="The relation type, as named in the call")
    head: SpanRef = Field(description="Its first argument (the subject: 'X' in 'X works for Y')")
    tail: SpanRef = Field(description="Its second argument (the object: 'Y')")


class RelationsResult(ToolResult):
    model: str
    relations: list[list[Relation]] = Field(description="One list per input text, in input order: relation "
                                                        "types in the call's order, then instances")


class FieldValue(BaseModel):
    text: str = Field(description="The value: a span of the text, or for a choice field the chosen option")
    start: int | None = Field(description="Character offset of the span in the input text; null for a choice")
    end: int | None = Field(description="One past its end; null for a choice")
    score: Score = Field(description="Its probability, 4 decimals")


Instance = dict[str, list[FieldValue]]


class ExtractResult(ToolResult):
    model: str
    results: list[dict[str, list[Instance]]] = Field(
        description="One object per input text: per structure name, its instances found in the text, each "
                    "mapping every field to its values (empty when not found; `str` fields hold at most one)")
