# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, Count, EntityName, GraphId
from tools.context import Limits
from tools.graph_schemas import GraphSubgraphResult


def arguments(limits: Limits) -> type[Arguments]:
    class GraphSubgraphArguments(Arguments):
        graph: GraphId
        entities: Annotated[list[EntityName], Field(min_length=1, max_length=50)]
        limit: Count(1, 50) = 50

    return GraphSubgraphArguments


TOOL = ToolDeclaration(
    name="graph_subgraph", title="Relations among entities", rank=130, groups=("graphs",), annotations=READ_ONLY,
    handler="tools.ontology:graph_subgraph", arguments=arguments, result=GraphSubgraphResult,
    description="The relations among a few entities, heaviest first, with evidence.",
    summary="the relations among a few entities")
