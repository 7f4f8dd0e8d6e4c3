# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import READ_ONLY, EntityName, GraphId
from tools.context import Limits
from tools.graph_schemas import GraphPathResult


def arguments(limits: Limits) -> type[Arguments]:
    class GraphPathArguments(Arguments):
        graph: GraphId
        source: EntityName
        target: EntityName

    return GraphPathArguments


TOOL = ToolDeclaration(
    name="graph_path", title="Path between two entities", rank=120, groups=("graphs",), annotations=READ_ONLY,
    handler="tools.ontology:graph_path", arguments=arguments, result=GraphPathResult,
    description="The shortest chain of relations (6 hops at most) between two entities, with evidence.",
    summary="the chain of relations between two entities")
