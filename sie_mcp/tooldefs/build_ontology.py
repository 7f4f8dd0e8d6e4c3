# pyright: reportInvalidTypeForm=false
# (argument types are built from the server's limits at startup: calls in annotations are the point)
from typing import Annotated, Any, cast

from pydantic import ConfigDict, Field
from typing_extensions import NotRequired, TypedDict

from sie_mcp.declare import Arguments, ToolDeclaration
from sie_mcp.tooldefs._types import APPENDS, GRAPH_ID_PATTERN, Label, Taxonomy, Text, TextList, exactly_one
from tools.context import Limits
from tools.graph_schemas import BuildOntologyResult


def arguments(limits: Limits) -> type[Arguments]:
    class GraphDocumentObject(TypedDict):
        text: Text(limits)  # type: ignore[valid-type]
        id: NotRequired[str | int | None]

    class BuildOntologyArguments(Arguments):
        texts: Annotated[Text(limits) | TextList(limits) | None, Field(description="Documents")] = None
        documents: Annotated[list[GraphDocumentObject] | None, Field(
            min_length=1, max_length=limits.max_texts,
            description="[{id, text}]")] = None
        labels: Annotated[list[Label] | None, Field(
            description="Entity types, e.g. ['person', 'company']")] = None
        model: Annotated[str | None, Field(description="Entity model: spaCy, GLiNER (labels = types)")] = None
        graph: Annotated[str | None, Field(max_length=64, pattern=GRAPH_ID_PATTERN,
                                           description="Graph to add to")] = None
        taxonomy: Annotated[Taxonomy(limits) | None, Field(description="Category tree for types")] = None
        relations: Annotated[list[Label] | None, Field(min_length=1, max_length=limits.max_labels,
                                                       description="Relation names to keep")] = None

        model_config = ConfigDict(arbitrary_types_allowed=True,
                                  json_schema_extra=cast(Any, {"anyOf": exactly_one("texts", "documents")}))

    return BuildOntologyArguments


TOOL = ToolDeclaration(
    name="build_ontology", title="Build a knowledge graph", rank=100, groups=("graphs",), annotations=APPENDS,
    handler="tools.ontology:build_ontology", arguments=arguments, result=BuildOntologyResult,
    description="""
        Build a knowledge graph from documents, or add to one: entities merged across aliases, typed
        relations with evidence. Returns a summary (graph id, counts, top entities); then use graph_search,
        graph_neighbors, graph_path, graph_subgraph. Limits: {max_texts} documents.""",
    summary="a knowledge graph of documents (or more documents into one): entities merged across aliases, typed "
            "relations and sentence co-occurrence with their evidence, types as ontology classes; answers with a "
            "compact summary (graph id, counts, top entities, relation types) and progress notifications. Not "
            "read-only: it writes the graph",
    default_model="`en_core_web_sm` (spaCy, bundled) + the embed model")
