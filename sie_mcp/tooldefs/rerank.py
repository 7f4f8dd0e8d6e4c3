# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, Count, Flag, ModelName, Text, TextList
from tools.context import Limits
from tools.schemas import RerankResult


def arguments(limits: Limits) -> type[Arguments]:
    class RerankArguments(Arguments):
        query: Text(limits, min_length=1)
        documents: TextList(limits, limits.max_documents)
        model: ModelName("rerank") = None
        top_k: Count(description="Return only the best k") | None = None
        return_documents: Annotated[Flag, Field(description="Whole documents")] = False

    return RerankArguments


TOOL = ToolDeclaration(
    name="rerank", title="Rerank documents", rank=20, groups=("text", "retrieval"), annotations=READ_ONLY,
    handler="tools.rerank:rerank", arguments=arguments, result=RerankResult,
    description="""
        Rank documents against a query, best first: index, score, snippet. Keep the few worth reading
        (top_k). Cross-encoders score probabilities, embedding models (default) cosine. Limits:
        {max_documents} documents.""",
    summary="documents best first: original index, score and an ~80-character snippet (the whole document "
            "with `return_documents`); a cross-encoder scores pairs (sigmoid of its logit), ColBERT by MaxSim, "
            "SPLADE by sparse dot product; an embedding model falls back to cosine — `method` says which",
    default_model="the embed model (cosine); set `--default-rerank-model ms-marco-MiniLM-L-6-v2` for a "
                  "cross-encoder")
