# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import DELETES, CollectionName
from tools.context import Limits
from tools.schemas import DeleteResult


def arguments(limits: Limits) -> type[Arguments]:
    class DeleteCollectionArguments(Arguments):
        collection: CollectionName

    return DeleteCollectionArguments


TOOL = ToolDeclaration(
    name="delete_collection", title="Delete a collection", rank=80, groups=("retrieval",), annotations=DELETES,
    handler="tools.retrieval:delete_collection", arguments=arguments, result=DeleteResult,
    description="Delete a collection and everything in it (cannot be undone).",
    summary="delete a collection")
