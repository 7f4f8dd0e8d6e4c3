# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, Count, Flag, ModelName, Representation, Texts
from tools.context import Limits
from tools.schemas import EmbedResult


def arguments(limits: Limits) -> type[Arguments]:
    class EmbedArguments(Arguments):
        texts: Texts(limits)
        model: ModelName("embed") = None
        kind: Annotated[Representation | None, Field(
            description="Applies the model's query/document prompts")] = None
        dimensions: Count(description="Matryoshka truncation") | None = None
        normalize: Annotated[Flag | None, Field(description="L2-normalise")] = None

    return EmbedArguments


TOOL = ToolDeclaration(
    name="embed", title="Embed texts", rank=10, groups=("text", "retrieval"), annotations=READ_ONLY,
    handler="tools.embed:embed", arguments=arguments, result=EmbedResult,
    description="""
        Embed texts as vectors for programs that store or compare them; you read a summary (dimensions,
        token counts, truncation). To find passages use search or rerank; to label, classify. Limits:
        {max_texts} texts of {max_chars} characters.""",
    summary="dense vectors, token counts, truncation flags; `kind` = `query`/`document` applies the model's "
            "prompts (e5, bge, Qwen3); `dimensions` = Matryoshka truncation. SPLADE models return sparse term "
            "weights with the terms themselves, ColBERT models one vector per token (`representation`)",
    default_model="`all-MiniLM-L6-v2`")
