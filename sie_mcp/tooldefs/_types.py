# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
"""Argument types shared by the tool declarations, each stating its constraint once: in the JSON Schema every
surface publishes and in the validation every surface runs. Types that depend on the server's limits are
functions of `Limits`."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from mcp.types import ToolAnnotations
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from tools.context import TOOL_TASKS, Limits


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer: 3 and 3.0, never `true` or "3" (pydantic's lax mode takes both)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer")
    return value


def Count(low: int = 1, high: int | None = None, description: str | None = None) -> Any:
    """An integer argument read as JSON Schema reads it (`_whole_number`), within [low, high]."""
    return Annotated[int, Field(ge=low, le=high, description=description), BeforeValidator(_whole_number)]


Flag = Annotated[bool, Field(strict=True)]
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]  # Count() where a static type is needed

# What Python's str.strip() removes (str.isspace), spelled out: regex `\s` differs between Python and the
# ECMA-262 patterns JSON Schema uses (\x1c-\x1f, \x85), and the tools strip names with str.strip().
SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK = rf"[^{SPACE}]"  # a name must contain a character that is not a space (tools strip names)

# Name rules the tools enforce with their own messages (tools/vector_store.py NAME, ontology/store.py GRAPH_ID),
# stated in the schemas too so that a client can tell a valid name before it calls.
COLLECTION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,62}[A-Za-z0-9]$"
GRAPH_ID_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_-]|\.[A-Za-z0-9_-])*\.?$"  # no "..": written without a lookahead


def Text(limits: Limits, min_length: int = 0, pattern: str | None = None) -> Any:
    return Annotated[str, StringConstraints(min_length=min_length or None, max_length=limits.max_chars,
                                            pattern=pattern)]


def TextList(limits: Limits, max_items: int | None = None) -> Any:
    return Annotated[list[Text(limits)], Field(min_length=1, max_length=max_items or limits.max_texts)]


def Texts(limits: Limits) -> Any:
    """One text or a list (one result per text), within the per-call limits."""
    return Text(limits) | TextList(limits)


def ModelName(tool: str, note: str = "") -> Any:
    """What a tool's `model` takes: a list_models id of a task the tool allows (tools/context.TOOL_TASKS)."""
    tasks = TOOL_TASKS[tool]
    listed = tasks[0] if len(tasks) == 1 else "/".join(tasks)
    return Annotated[str | None, Field(description=f"list_models id ({listed}{note})")]


Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]  # an entity type or label name

CollectionName = Annotated[str, Field(pattern=COLLECTION_NAME_PATTERN)]
GraphId = Annotated[str, Field(max_length=64, pattern=GRAPH_ID_PATTERN)]  # the pattern needs a character
EntityName = Annotated[str, Field(min_length=1)]  # a name, an alias or an id


def Taxonomy(limits: Limits) -> Any:
    """A category tree: paths "A > B > C" (' | ' starts a category's description), a nested object
    {"A": {"B": ["C"]}}, or a registered taxonomy's name. Depth, blank names and repeats are the tool's checks
    (tools/taxonomy_limits.py: 413 and 400 that name them): spelled out in JSON Schema they cost an agent
    about 1,500 characters of every tool list for rules a model rarely breaks."""
    category = Annotated[str, StringConstraints(max_length=limits.max_category_chars)]
    paths = Annotated[list[category], Field(min_length=1, max_length=limits.max_labels)]
    tree = Annotated[dict[str, Any], Field(min_length=1)]
    either: Any = paths  # a union of constrained types, made at run time
    return either | tree | category


class Strict(BaseModel):
    """A nested argument object: unknown keys are refused, as the schema says (additionalProperties)."""

    model_config = ConfigDict(extra="forbid")


READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, destructive_hint=False,
                            open_world_hint=False)
# Collections and graphs are server state: reading it is idempotent only until someone writes.
READS_STATE = ToolAnnotations(read_only_hint=True, idempotent_hint=False, destructive_hint=False,
                              open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, idempotent_hint=True, destructive_hint=False, open_world_hint=False)
DELETES = ToolAnnotations(read_only_hint=False, idempotent_hint=True, destructive_hint=True, open_world_hint=False)
APPENDS = ToolAnnotations(read_only_hint=False, idempotent_hint=False, destructive_hint=False,
                          open_world_hint=False)

Representation: TypeAlias = Literal["query", "document"]


def _not_null(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def exactly_one(a: str, b: str) -> list[dict[str, Any]]:
    """JSON Schema for "`a` or `b`, not both", where either may be sent as null (read as absent)."""
    return [{"required": [a], "properties": {a: {"not": {"type": "null"}}, b: {"type": "null"}}},
            {"required": [b], "properties": {b: {"not": {"type": "null"}}, a: {"type": "null"}}}]


def not_both(a: str, b: str) -> dict[str, Any]:
    """JSON Schema for "not `a` and `b` together" (null reads as absent)."""
    both = _not_null(a)
    both["required"].append(b)
    both["properties"][b] = {"not": {"type": "null"}}
    return {"not": both}
