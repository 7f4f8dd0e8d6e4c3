# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field, StringConstraints

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, ModelName, Texts
from tools.context import Limits
from tools.extraction_schemas import MAX_NAME_CHARS, MAX_NAMES, ExtractResult

FieldSpec = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS * 4)]
StructureName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


def arguments(limits: Limits) -> type[Arguments]:
    class ExtractArguments(Arguments):
        texts: Texts(limits)
        schema_: Annotated[dict[StructureName, Annotated[list[FieldSpec], Field(min_length=1, max_length=MAX_NAMES)]], Field(
            alias="schema", min_length=1, max_length=MAX_NAMES,
            description="{structure: [field]}; field: name, name::str (one value), name::[a|b] (choice)")]
        model: ModelName("extract") = None
        threshold: Annotated[float | None, Field(ge=0, le=1, description="Min score (0.5)")] = None

    return ExtractArguments


TOOL = ToolDeclaration(
    name="extract", title="Extract structured records", rank=34, groups=("text",), annotations=READ_ONLY,
    handler="tools.gliner2:extract", arguments=arguments, result=ExtractResult,
    description="""
        Fill a schema from texts, e.g. {{"deal": ["buyer", "target", "price::str"]}}: per text, each
        structure's instances with every field's values (text, offsets, score). Limits:
        {max_texts} texts.""",
    signature="extract(texts, schema, model?, threshold?)",
    summary="per text `{structure: [{field: [{text, start, end, score}]}]}` for a schema such as "
            "`{\"deal\": [\"buyer\", \"target\", \"price::str\", \"kind::[merger|acquisition]::str\"]}` "
            "(GLiNER2's field syntax, [docs/gliner.md](docs/gliner.md))",
    default_model="`gliner2-base-v1`")
