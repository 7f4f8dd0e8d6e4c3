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
            description="Strings, or {id?, text, metadata?} (flat metadata to filter on)")]
        model: ModelName("index_documents", note=", for a new collection") = None

    return IndexDocumentsArguments


TOOL = ToolDeclaration(
    name="index_documents", title="Index documents into a collection", rank=50, groups=("retrieval",),
    annotations=WRITES, handler="tools.retrieval:index_documents", arguments=arguments, result=IndexResult,
    description="""
        Store documents in a server-side collection (created on first use, kept across restarts) so you can
        search them later without reading them. Chunked (~800 characters, with offsets) and embedded once;
        the same id replaces a document. Returns counts and ids, never text. Limits: {max_texts} documents
        per call.""",
    summary="stores documents (strings or `{id?, text, metadata?}`) in a server-side collection, chunked with "
            "offsets, embedded once; persisted under `<data_dir>/collections/` ([docs/collections.md]"
            "(docs/collections.md))",
    default_model="the embed model")
