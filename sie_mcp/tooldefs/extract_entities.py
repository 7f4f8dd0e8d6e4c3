# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated, Literal

from pydantic import Field

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, Flag, Label, ModelName, Texts
from tools.context import Limits
from tools.schemas import EntitiesResult

MAX_LABELS = 100  # entity types per call (tools/entities.py)


def arguments(limits: Limits) -> type[Arguments]:
    class ExtractEntitiesArguments(Arguments):
        texts: Texts(limits)
        model: ModelName("extract_entities") = None
        labels: Annotated[list[Label] | None, Field(
            max_length=MAX_LABELS, description="Types to keep, or find (zero-shot)")] = None
        aggregation: Annotated[Literal["simple", "first", "average", "max"] | None, Field(
            description="Token classifiers: word pieces")] = None
        threshold: Annotated[float | None, Field(ge=0, le=1, description="Zero-shot: min score (0.5)")] = None
        nested: Annotated[Flag, Field(description="Zero-shot: nested spans")] = False
        multi_label: Annotated[Flag, Field(description="Zero-shot: types per span")] = False

    return ExtractEntitiesArguments


TOOL = ToolDeclaration(
    name="extract_entities", title="Extract named entities", rank=30, groups=("text", "graphs"),
    annotations=READ_ONLY, handler="tools.entities:extract_entities", arguments=arguments, result=EntitiesResult,
    description="""
        Named entities per text: text, type, score, character offsets. The default spaCy model finds the 18
        OntoNotes types (PERSON, ORG, GPE, LOC, DATE, MONEY …); zero-shot models (gliner*) the `labels` you
        name. Limits: {max_texts} texts.""",
    summary="entities with text, label, score, character start/end, and the `method`. The default spaCy pipeline "
            "finds the 18 OntoNotes types (score always 1.0: spaCy gives no probabilities); transformer taggers "
            "read long texts in overlapping windows and aggregate like transformers' pipeline (`aggregation`); "
            "`labels` filters fixed types (`person` = `PER`/`PERSON` …); zero-shot GLiNER and GLiNER2 models find "
            "the types you name in `labels` (required), with `threshold` (0.5), `nested` and `multi_label` "
            "([docs/gliner.md](docs/gliner.md))",
    default_model="`en_core_web_sm` (spaCy, bundled: offline)")
