from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, Flag, ModelName, Texts
from tools.context import Limits
from tools.schemas import EntitiesResult

MAX_LABELS = 100  # entity types per call (tools/entities.py)

Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def arguments(limits: Limits) -> type[Arguments]:
    class ExtractEntitiesArguments(Arguments):
        texts: Texts(limits)
        model: ModelName("extract_entities") = None
        labels: Annotated[list[Label] | None, Field(
            max_length=MAX_LABELS, description="Types to keep (fixed-type models) or find (zero-shot: required)")] = None
        aggregation: Annotated[Literal["simple", "first", "average", "max"] | None, Field(
            description="Token classifiers: pieces to words (first)")] = None
        threshold: Annotated[float | None, Field(ge=0, le=1, description="Zero-shot: minimum score (0.5)")] = None
        nested: Annotated[Flag, Field(description="Zero-shot: entities inside entities")] = False
        multi_label: Annotated[Flag, Field(description="Zero-shot: several types per span")] = False

    return ExtractEntitiesArguments


TOOL = ToolDeclaration(
    name="extract_entities", title="Extract named entities", rank=30, groups=("text", "graphs"),
    annotations=READ_ONLY, handler="tools.entities:extract_entities", arguments=arguments, result=EntitiesResult,
    description="""
        Find named entities in texts: per text, each entity's text, type, score and character offsets into
        your text. The default spaCy model finds OntoNotes types (PERSON, NORP, FAC, ORG, GPE, LOC, PRODUCT,
        EVENT, WORK_OF_ART, LAW, LANGUAGE, DATE, TIME, PERCENT, MONEY, QUANTITY, ORDINAL, CARDINAL; score
        1.0). Zero-shot models (gliner*) find the `labels` you name. For relations between entities use
        extract_relations. Limits: {max_texts} texts per call; long texts are read in windows.""",
    summary="entities with text, label, score, character start/end, and the `method`. The default spaCy pipeline "
            "finds the 18 OntoNotes types (score always 1.0: spaCy gives no probabilities); transformer taggers "
            "read long texts in overlapping windows and aggregate like transformers' pipeline (`aggregation`); "
            "`labels` filters fixed types (`person` = `PER`/`PERSON` …); zero-shot GLiNER and GLiNER2 models find "
            "the types you name in `labels` (required), with `threshold` (0.5), `nested` and `multi_label` "
            "([docs/gliner.md](docs/gliner.md))",
    default_model="`en_core_web_sm` (spaCy, bundled: offline)")
