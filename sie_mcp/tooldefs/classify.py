# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, Count, Flag, ModelName, Taxonomy, Texts, TextList, not_both
from tools.context import Limits
from tools.schemas import ClassifyResult


def arguments(limits: Limits) -> type[Arguments]:
    class ClassifyArguments(Arguments):
        texts: Texts(limits)
        labels: TextList(limits, limits.max_labels) | None = None
        taxonomy: Annotated[Taxonomy(limits) | None, Field(
            description="Paths 'A > B > C', {'A': {'B': ['C']}}, or a registered name")] = None
        model: ModelName("classify") = None
        top_k: Count(1, 50) = 3
        beam: Count(1, 20) = 3
        search: Annotated[Literal["auto", "flat", "beam"], Field(
            description="Taxonomy: all leaves, or by level")] = "auto"
        rescore_model: Annotated[str | None, Field(description="Re-scores beam levels")] = None
        hypothesis_template: Annotated[str | None, Field(description="NLI hypothesis")] = None
        multi_label: Annotated[Flag, Field(description="Independent labels")] = False

        model_config = ConfigDict(arbitrary_types_allowed=True, json_schema_extra=not_both("labels", "taxonomy"))

        @model_validator(mode="after")
        def _one_of(self) -> Any:
            # Neither: a classifier with its own labels (the tool checks the model); both: refused here.
            if self.labels is not None and self.taxonomy is not None:
                raise ValueError("give labels or taxonomy, not both")
            return self

    return ClassifyArguments


TOOL = ToolDeclaration(
    name="classify", title="Classify into labels or a taxonomy", rank=40, groups=("text",),
    annotations=READ_ONLY, handler="tools.classify:classify", arguments=arguments, result=ClassifyResult,
    description="""
        Classify texts into `labels`, or a `taxonomy` to its best path (['Electronics', 'Computers',
        'Laptops']) without reading the tree: per text top_k labels, scores, `confidence` (margin to the
        runner-up). Embedding models (default) score cosine (0.2-0.6 is normal), NLI and GLiNER2
        probabilities. Limits: {max_texts} texts, {max_labels} labels.""",
    summary="flat labels; a taxonomy (a registered name, paths `\"A > B > C\"` or a nested object) scored flat over "
            "every leaf (default) or walked with a beam (`search`, `rescore_model` = a cross-encoder/NLI re-scoring "
            "each level); NLI models classify zero-shot (hypothesis template), GLiNER2 models too (`multi_label`); "
            "a trained classifier scores its own labels. `confidence` = margin to the runner-up. "
            "docs/entities-and-taxonomies.md",
    default_model="the embed model")
