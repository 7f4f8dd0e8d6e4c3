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
        relation: Annotated[str | None, Field(description="Only this relation, e.g. 'works_for'")] = None
        limit: Count(1, 50, "Neighbours to return") = 20

    return GraphNeighborsArguments


TOOL = ToolDeclaration(
    name="graph_neighbors", title="Neighbours of an entity", rank=110, groups=("graphs",), annotations=READ_ONLY,
    handler="tools.ontology:graph_neighbors", arguments=arguments, result=GraphNeighborsResult,
    description="What an entity is connected to: neighbours with the relation and one evidence sentence each, "
                "strongest first.",
    signature="graph_neighbors(graph, entity, depth?, relation?)",
    summary="neighbours with the relation and an evidence sentence")
