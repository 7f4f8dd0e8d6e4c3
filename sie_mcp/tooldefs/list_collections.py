# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READS_STATE
from tools.context import Limits
from tools.schemas import CollectionsResult


def arguments(limits: Limits) -> type[Arguments]:
    class ListCollectionsArguments(Arguments):
        pass

    return ListCollectionsArguments


TOOL = ToolDeclaration(
    name="list_collections", title="List collections", rank=70, groups=("retrieval",), annotations=READS_STATE,
    handler="tools.retrieval:list_collections", arguments=arguments, result=CollectionsResult,
    description="The server's collections: name, embedding model, dimensions, chunks.",
    summary="the collections with model and size")
