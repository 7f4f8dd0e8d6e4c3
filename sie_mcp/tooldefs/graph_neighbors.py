# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated

from pydantic import Field

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, Count, EntityName, GraphId
from tools.context import Limits
from tools.graph_schemas import GraphNeighborsResult


def arguments(limits: Limits) -> type[Arguments]:
    class GraphNeighborsArguments(Arguments):
        graph: GraphId
        entity: EntityName
        depth: Count(1, 3, "Hops") = 1
        relation: Annotated[str | None, Field(description="Only this relation")] = None
        limit: Count(1, 50) = 20

    return GraphNeighborsArguments


TOOL = ToolDeclaration(
    name="graph_neighbors", title="Neighbours of an entity", rank=110, groups=("graphs",), annotations=READ_ONLY,
    handler="tools.ontology:graph_neighbors", arguments=arguments, result=GraphNeighborsResult,
    description="An entity's neighbours: relation and one evidence sentence each, strongest first.",
    summary="neighbours with the relation and an evidence sentence")
