# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field, StringConstraints

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, ModelName, Texts
from tools.context import Limits
from tools.extraction_schemas import MAX_NAME_CHARS, MAX_NAMES, RelationsResult

RelationName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


def arguments(limits: Limits) -> type[Arguments]:
    class ExtractRelationsArguments(Arguments):
        texts: Texts(limits)
        relations: Annotated[list[RelationName], Field(min_length=1, max_length=MAX_NAMES,
                                                       description="e.g. ['works for', 'founded']")]
        model: ModelName("extract_relations") = None
        threshold: Annotated[float | None, Field(ge=0, le=1, description="Min score (0.5)")] = None

    return ExtractRelationsArguments


TOOL = ToolDeclaration(
    name="extract_relations", title="Extract relations", rank=32, groups=("text", "graphs"), annotations=READ_ONLY,
    handler="tools.gliner2:extract_relations", arguments=arguments, result=RelationsResult,
    description="""
        Who did what to whom: per text, each instance of the relation types you name, with head and tail
        spans (text, offsets, score). Limits: {max_texts} texts.""",
    summary="per text, `{relation, head: {text, start, end, score}, tail: {…}}` for the relation types you name "
            "(GLiNER2, [docs/gliner.md](docs/gliner.md))",
    default_model="`gliner2-base-v1`")
