# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import NON_BLANK, READ_ONLY, Count, GraphId
from tools.context import Limits
from tools.graph_schemas import GraphSearchResult
from typing import Annotated

from pydantic import Field


def arguments(limits: Limits) -> type[Arguments]:
    class GraphSearchArguments(Arguments):
        graph: GraphId
        query: Annotated[str, Field(pattern=NON_BLANK, description="A name, alias or description")]
        limit: Count(1, 50) = 10

    return GraphSearchArguments


TOOL = ToolDeclaration(
    name="graph_search", title="Find entities in a graph", rank=105, groups=("graphs",), annotations=READ_ONLY,
    handler="tools.ontology:graph_search", arguments=arguments, result=GraphSearchResult,
    description="Find entities in a graph by name, alias or meaning: ids for the other graph tools.",
    summary="entities by name or alias (embedding fallback)")
