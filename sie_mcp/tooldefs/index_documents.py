# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._retrieval_types import Document
from sie_mcp.tooldefs._types import WRITES, CollectionName, ModelName, Text
from tools.context import Limits
from tools.schemas import IndexResult


def arguments(limits: Limits) -> type[Arguments]:
    class IndexDocumentsArguments(Arguments):
        collection: CollectionName
        documents: Annotated[list[Text(limits) | Document(limits)], Field(
            min_length=1, max_length=limits.max_texts,
            description="Strings or {id?, text, metadata?}")]
        model: ModelName("index_documents") = None

    return IndexDocumentsArguments


TOOL = ToolDeclaration(
    name="index_documents", title="Index documents into a collection", rank=50, groups=("retrieval",),
    annotations=WRITES, handler="tools.retrieval:index_documents", arguments=arguments, result=IndexResult,
    description="""
        Store documents in a server-side collection (kept across restarts) to search them later instead of
        reading them; the same id replaces. Returns counts and ids. Limits: {max_texts} documents.""",
    summary="stores documents (strings or `{id?, text, metadata?}`) in a server-side collection, chunked with "
            "offsets, embedded once; persisted under `<data_dir>/collections/` ([docs/collections.md]"
            "(docs/collections.md))",
    default_model="the embed model")
