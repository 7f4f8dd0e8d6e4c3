# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._retrieval_types import Filter
from sie_mcp.tooldefs._types import NON_BLANK, READS_STATE, CollectionName, Count, Flag, Text
from tools.context import Limits
from tools.schemas import SearchResult


def arguments(limits: Limits) -> type[Arguments]:
    class SearchArguments(Arguments):
        collection: CollectionName
        query: Text(limits, pattern=NON_BLANK)
        top_k: Count(1, 100) = 5
        filter: Filter | None = None
        rerank: Annotated[Flag, Field(description="Re-score with the rerank model")] = False
        return_text: Annotated[Flag, Field(description="Whole chunks")] = False

    return SearchArguments


TOOL = ToolDeclaration(
    name="search", title="Search a collection", rank=60, groups=("retrieval",), annotations=READS_STATE,
    handler="tools.retrieval:search", arguments=arguments, result=SearchResult,
    description="""
        Search a collection by meaning: nearest chunks, best first, with document id, score, offsets,
        metadata and a snippet. Ask again with return_text only for what matters.""",
    summary="nearest chunks: document id, chunk, score, offsets, metadata, snippet; metadata filters "
            "(`{\"price\": {\"$lt\": 100}}`), optional rerank stage",
    default_model="the collection's model")
