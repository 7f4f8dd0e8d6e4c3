"""One declaration per tool, and everything derived from it.

A tool is declared once, in its own module under `sie_mcp/tooldefs/`: its name, a description template, an
argument model built from the server's limits (`Limits`, bound at startup: `--max-texts 7` is `maxItems: 7`
in every schema and "7 texts" in the description), its result model, its annotations, its handler in
`tools/` and the groups `--tools` may name. From that one declaration come:

- the MCP tool (`inputSchema`, `outputSchema`, description, annotations; `mcp_server.build_mcp`);
- the REST route `POST /v1/tools/{name}`, `/v1/tools` (with the OpenAI function list) and the tool's
  request and response in `/openapi.json` (`http_app`, `openapi`);
- the README's tool table (`readme_table`, kept true by tests/test_declarations.py).

One validator (`BoundTool.validate`) runs on every surface. A breach of a limit that comes from the settings
(items per call, characters) is an `InputTooLong` (413, "split the call"), any other schema failure a
ValidationError (422): the same answer on MCP and HTTP.

What an agent reads is budgeted: schemas carry no `title` keys, no `"default": null` or `false`, nullable fields in
the short `"type": [T, "null"]` form, and the whole listing stays under `TOOL_LIST_BUDGET` characters
(tests/test_declarations.py holds it; docs/benchmarks.md records each tool's cost).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import pkgutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import ToolAnnotations
from pydantic import ConfigDict, ValidationError
from pydantic_core import InitErrorDetails

from engine.errors import InputTooLong
from sie_mcp.errors import MAX_DETAILS, TOTAL_ERRORS, field_location
from tools.context import Limits
from tools.schemas import ToolResult

if TYPE_CHECKING:
    from sie_mcp.settings import Settings

TOOL_LIST_BUDGET = 12_000
DEFINITION = "x-definition"  # in a type's JSON Schema: publish it once under $defs with this name  # characters of descriptions plus input schemas, every tool listed


class Arguments(ArgModelBase):
    """Base of every tool's argument model (the SDK's base: its one-level dump feeds the handler)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)


@dataclass(frozen=True)
class ToolDeclaration:
    """Everything about one tool. `arguments(limits)` builds the argument model with the server's limits;
    `description` is a `str.format` template over the `Limits` fields; `handler` is "module:function" in
    tools/, called as handler(ToolContext, **arguments) and imported on first call (listing tools, and
    stdio's `initialize`, never import torch); `groups` are the names `--tools` takes besides the tool's."""

    name: str
    title: str
    description: str
    arguments: Callable[[Limits], type[Arguments]]
    result: type[ToolResult]
    annotations: ToolAnnotations
    handler: str
    groups: tuple[str, ...]
    rank: int  # order in listings (tools/list, /v1/tools, the README table)
    signature: str = ""  # the README table's call form, e.g. "embed(texts, model?, kind?)"; derived if empty
    summary: str = ""  # the README table's one-line "what it does"; the description's first sentence if empty
    default_model: str = "—"  # the README table's default-model column


@dataclass(frozen=True)
class BoundTool:
    """A declaration bound to this server's limits: what every surface publishes and validates with."""

    declaration: ToolDeclaration
    limits: Limits

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def title(self) -> str:
        return self.declaration.title

    @property
    def annotations(self) -> ToolAnnotations:
        return self.declaration.annotations

    @property
    def result_model(self) -> type[ToolResult]:
        return self.declaration.result

    @cached_property
    def description(self) -> str:
        return inspect.cleandoc(self.declaration.description).format(**asdict(self.limits))

    @cached_property
    def arguments(self) -> type[Arguments]:
        return self.declaration.arguments(self.limits)

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        """The argument model's JSON Schema as published everywhere (MCP inputSchema, OpenAPI request body)."""
        return compact_schema(self.arguments.model_json_schema())

    @cached_property
    def output_schema(self) -> dict[str, Any]:
        return compact_schema(self.result_model.model_json_schema(mode="serialization"))

    @cached_property
    def metadata(self) -> FuncMetadata:
        """The SDK's validation object for this tool (MCP runs it; HTTP runs `validate`, which calls it)."""
        return BoundedFuncMetadata(arg_model=self.arguments, output_model=self.result_model,
                                   output_schema=self.output_schema)

    @cached_property
    def handler(self) -> Callable[..., Awaitable[ToolResult]]:
        module, _, name = self.declaration.handler.partition(":")
        return getattr(importlib.import_module(module), name)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The one validator: the handler's keyword arguments, or ValidationError / InputTooLong."""
        return self.metadata.validate_arguments(arguments)

    def listing_cost(self) -> int:
        """Characters an agent pays to see this tool: its description plus its input schema (compact JSON)."""
        return len(self.description) + len(json.dumps(self.input_schema, separators=(",", ":")))


class BoundedFuncMetadata(FuncMetadata):
    """The SDK's argument validation with two changes. A limit breach (too many items, too many characters)
    is an InputTooLong that names the field and the limit ("texts has 600 items; the limit is 512 per call:
    split the call"), as the tools word it. Other failures keep at most MAX_DETAILS errors (the count of all
    of them rides on the error, `sie_mcp.errors.argument_errors`): for `{"texts": [1] * 50000}` pydantic's
    whole text was 9.4 MB."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().validate_arguments(arguments_to_validate)
        except ValidationError as e:
            breach = limit_breach(e, arguments_to_validate)
            if breach is not None:
                raise breach from None
            if e.error_count() <= MAX_DETAILS:
                raise
            first = [InitErrorDetails(type=d["type"], loc=d["loc"], input=d["input"],
                                      **({"ctx": d["ctx"]} if "ctx" in d else {}))
                     for d in e.errors(include_url=False)[:MAX_DETAILS]]
            bounded = ValidationError.from_exception_data(
                f"{e.title} (the first {MAX_DETAILS} of {e.error_count()} errors)", first)
            setattr(bounded, TOTAL_ERRORS, e.error_count())
            raise bounded from None


def _field_path(loc: Iterable[Any]) -> tuple[list[Any], str]:
    """A pydantic error location as the caller's JSON path, and how a message names it: texts, texts[3],
    documents[2].text."""
    path = field_location(list(loc))
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return path, out or "arguments"


def _value_at(arguments: Any, path: list[Any]) -> Any:
    for p in path:
        try:
            arguments = arguments[p]
        except (KeyError, IndexError, TypeError):
            return None
    return arguments


def limit_breach(error: ValidationError, arguments: Any) -> InputTooLong | None:
    """The InputTooLong a ValidationError stands for when one of its errors is a length limit (a union's
    other branches fail too, which says nothing more), else None."""
    for d in error.errors(include_url=False, include_input=False):
        if d["type"] not in ("too_long", "string_too_long"):
            continue
        path, where = _field_path(d["loc"])
        limit = d.get("ctx", {}).get("max_length")
        value = _value_at(arguments, path)
        if d["type"] == "too_long":
            size = len(value) if isinstance(value, list | dict) else d.get("ctx", {}).get("actual_length")
            return InputTooLong(f"{where} has {size} items; the limit is {limit} per call: split the call")
        size = len(value) if isinstance(value, str) else "too many"
        return InputTooLong(f"{where} has {size} characters; the limit is {limit}")
    return None


# --- schemas as an agent reads them -------------------------------------------------------------------

# Keywords that constrain one JSON type only: a schema of these and `type` may merge with {"type": "null"}.
_TYPED_KEYWORDS = {"type", "description", "minLength", "maxLength", "pattern", "minimum", "maximum",
                   "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "items", "uniqueItems",
                   "properties", "required", "additionalProperties", "propertyNames", "minProperties",
                   "maxProperties", "format"}


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON Schema as we publish it: no `title` keys, no `"default": null`, definitions used once
    inlined (recursive ones stay under $defs), and `anyOf [X, null]` written `"type": [T, "null"]` where X
    constrains one type only. The same instances validate before and after."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})
    uses: dict[str, int] = {}

    def count(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                uses[ref.rsplit("/", 1)[1]] = uses.get(ref.rsplit("/", 1)[1], 0) + 1
            for v in node.values():
                count(v)
        elif isinstance(node, list):
            for v in node:
                count(v)

    count(schema)
    for d in defs.values():
        count(d)
    recursive = {name for name, d in defs.items() if f'"#/$defs/{name}"' in json.dumps(d)}
    kept: dict[str, Any] = {}

    def walk(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        if in_properties:  # property names -> schemas: every key is a name, never a keyword
            return {k: walk(v) for k, v in node.items()}
        named = node.get(DEFINITION)
        if isinstance(named, str):  # a schema its type names: stated once under $defs, referenced
            if named not in kept:
                kept[named] = walk({k: v for k, v in node.items() if k != DEFINITION})
            return {"$ref": f"#/$defs/{named}"}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[1]
            if name in recursive:
                if name not in kept:
                    kept[name] = None
                    kept[name] = walk(defs[name])
                rest = {k: walk(v) for k, v in node.items() if k not in ("$ref", "title")}
                return {"$ref": ref, **rest}
            inlined = walk(defs[name])
            return {**inlined, **{k: walk(v) for k, v in node.items() if k not in ("$ref", "title")}}
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "title" or (k == "default" and (v is None or v is False)) or (
                    k == "additionalProperties" and v is True):
                continue  # a flag's false and an option's null are what leaving it out means
            out[k] = walk(v, in_properties=k in ("properties", "patternProperties"))
        return _disjoint_types(_short_nullable(_type_list(_key_pattern(out))))

    result = walk(schema)
    if kept:
        result["$defs"] = kept
    return result


def _key_pattern(node: dict[str, Any]) -> dict[str, Any]:
    """pydantic writes a constrained dict key as `patternProperties` (keys that do not match would be
    unconstrained, yet pydantic refuses them) plus `propertyNames` for its lengths: one `propertyNames` with
    the pattern and `additionalProperties` says what pydantic does."""
    patterns = node.get("patternProperties")
    if not isinstance(patterns, dict) or len(patterns) != 1 or "additionalProperties" in node:
        return node
    (pattern, value), = patterns.items()
    out = {k: v for k, v in node.items() if k != "patternProperties"}
    out["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
    out["additionalProperties"] = value
    return out


def _type_list(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf` of bare types ({"type": "string"}, {"type": "null"} …) written as one `"type": [...]`."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or not all(isinstance(b, dict) and set(b) == {"type"} and
                                                 isinstance(b["type"], str) for b in branches):
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {"type": [b["type"] for b in branches], **rest}


def _disjoint_types(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf` of branches of distinct types whose keywords each constrain their own type only (string:
    maxLength; array: items, maxItems; null …) written as one schema with a type list: the same instances
    validate, since a keyword ignores values of other types. `texts` (a string or a list) is ~40 characters
    shorter so."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) < 2:
        return node
    merged: dict[str, Any] = {"type": []}
    for b in branches:
        kind = b.get("type") if isinstance(b, dict) else None
        if not isinstance(kind, str) or kind in merged["type"] or not set(b) <= _TYPED_KEYWORDS - {"description"}:
            return node
        if any(k in merged for k in b if k != "type"):
            return node
        merged["type"].append(kind)
        merged.update({k: v for k, v in b.items() if k != "type"})
    return {**merged, **{k: v for k, v in node.items() if k != "anyOf"}}


def _short_nullable(node: dict[str, Any]) -> dict[str, Any]:
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2 or {"type": "null"} not in branches:
        return node
    other = branches[0] if branches[1] == {"type": "null"} else branches[1]
    if "enum" in other and set(other) <= {"enum", "type", "description"}:
        merged = {"enum": [*other["enum"], None]}
    elif isinstance(other.get("type"), str) and set(other) <= _TYPED_KEYWORDS:
        merged = {**other, "type": [other["type"], "null"]}
    else:
        return node
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**merged, **rest}


# --- the set of tools a server exposes -----------------------------------------------------------------


def declarations() -> list[ToolDeclaration]:
    """Every tool declared under sie_mcp/tooldefs/ (a module per tool, each with a `TOOL`), in rank order."""
    from sie_mcp import tooldefs

    found = []
    for info in pkgutil.iter_modules(tooldefs.__path__):
        module = importlib.import_module(f"{tooldefs.__name__}.{info.name}")
        declared = getattr(module, "TOOL", None)
        if isinstance(declared, ToolDeclaration):
            found.append(declared)
    return sorted(found, key=lambda d: (d.rank, d.name))


def groups(declared: Iterable[ToolDeclaration]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in declared:
        for g in d.groups:
            out.setdefault(g, []).append(d.name)
    return out


def select(names: Iterable[str], declared: list[ToolDeclaration]) -> list[ToolDeclaration]:
    """The declarations `--tools` names (tool names and group names, mixed); all of them for none. An unknown
    name is a ValueError that lists the valid ones."""
    wanted = [n.strip() for n in names if n.strip()]
    if not wanted or wanted == ["all"]:
        return declared
    by_group = groups(declared)
    by_name = {d.name: d for d in declared}
    unknown = [n for n in wanted if n not in by_name and n not in by_group and n != "all"]
    if unknown:
        raise ValueError(f"unknown tool or group {', '.join(map(repr, unknown))} in --tools; tools: "
                         f"{', '.join(by_name)}; groups: {', '.join(f'{g} ({len(t)})' for g, t in by_group.items())}, "
                         "all")
    chosen = {n for w in wanted for n in (by_name if w == "all" else by_group.get(w, [w]))}
    return [d for d in declared if d.name in chosen]


@dataclass(frozen=True)
class Surface:
    """The tools this server exposes, bound to its limits: what MCP lists and HTTP routes."""

    tools: dict[str, BoundTool] = field(default_factory=dict)

    def __iter__(self):
        return iter(self.tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __getitem__(self, name: str) -> BoundTool:
        return self.tools[name]

    def names(self) -> list[str]:
        return list(self.tools)

    def listing_cost(self) -> int:
        return sum(t.listing_cost() for t in self)


def surface(settings: Settings | None = None, limits: Limits | None = None,
            tools: Iterable[str] | None = None) -> Surface:
    """The tools for `settings` (its limits and `--tools`), or for explicit `limits` and tool names."""
    if settings is not None:
        limits = limits or settings.limits()
        tools = settings.tools.split(",") if tools is None else tools
    limits = limits or Limits()
    chosen = select(tools or [], declarations())
    return Surface({d.name: BoundTool(d, limits) for d in chosen})


def readme_table(bound: Surface) -> str:
    """The README's tool table, generated from the declarations (default limits)."""
    lines = ["| tool | what it does | default model |", "|---|---|---|"]
    for tool in bound:
        d = tool.declaration
        summary = d.summary or tool.description.split("\n\n", 1)[0].replace("\n", " ")
        lines.append(f"| `{d.signature or _signature(tool)}` | {summary} | {d.default_model} |")
    return "\n".join(lines)


def _signature(tool: BoundTool) -> str:
    required = set(tool.input_schema.get("required", []))
    names = [n if n in required else f"{n}?" for n in tool.input_schema.get("properties", {})]
    return f"{tool.name}({', '.join(names)})"
