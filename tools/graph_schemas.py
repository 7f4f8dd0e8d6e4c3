"""Typed results of the knowledge-graph tools (kept beside tools/schemas.py so the two evolve apart)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tools.schemas import ToolResult


class TopEntity(BaseModel):
    name: str
    type: str
    degree: int = Field(description="Relations the entity takes part in")


class BuildOntologyResult(ToolResult):
    graph: str = Field(description="Graph id: pass it to graph_neighbors, graph_path, graph_subgraph, graph_search, "
                                   "or to build_ontology again to add documents")
    resource: str = Field(description="MCP resource URI of the whole graph (node-link JSON); large: prefer the tools")
    documents: int = Field(description="Documents in the graph after this call")
    added: int = Field(description="Documents added by this call")
    replaced: int = Field(description="Documents whose id was already in the graph (their old version is replaced)")
    nodes: int = Field(description="Entity nodes (after merging aliases)")
    edges: int = Field(description="Relation edges (typed relations, i.e. facts, and sentence co-occurrences)")
    classes: list[str] = Field(description="Entity types (ontology classes), with taxonomy categories if given")
    top_entities: list[TopEntity] = Field(description="Most connected entities, best first")
    relation_types: dict[str, int] = Field(description="Relation -> edge count, most frequent first (top 15)")


class Evidence(BaseModel):
    doc: str
    sentence: str = Field(description="The sentence stating the relation (cut to 200 characters)")


class EdgeView(BaseModel):
    source: str = Field(description="Entity id")
    target: str = Field(description="Entity id")
    relation: str = Field(description="A typed fact ('acquired', 'works_for', 'based_in', 'role:ceo' …, or the caller's "
                                      "relation label), or co_occurs_with (same sentence: context, not a fact)")
    weight: int = Field(description="Sentences that state it")
    evidence: Evidence | None


class EntityCard(BaseModel):
    id: str
    name: str
    type: str
    aliases: list[str]
    mentions: int
    documents: int


class Neighbor(EntityCard):
    hops: int
    via: EdgeView = Field(description="The edge that reached it")


class GraphNeighborsResult(ToolResult):
    graph: str
    entity: EntityCard
    neighbors: list[Neighbor] = Field(description="Nearest first, then by weight")
    total: int = Field(description="Neighbours found before the limit")
    other_matches: list[str] = Field(description="Other entity ids with the same name (pass one as `entity`)")


class PathHop(EdgeView):
    from_name: str = Field(description="Name of the entity the hop leaves")
    to_name: str = Field(description="Name of the entity it reaches")


class GraphPathResult(ToolResult):
    graph: str
    source: EntityCard
    target: EntityCard
    found: bool
    hops: list[PathHop] = Field(description="The path's edges in order (empty when not found)")


class GraphSubgraphResult(ToolResult):
    graph: str
    nodes: list[EntityCard]
    edges: list[EdgeView] = Field(description="Relations among the nodes, heaviest first")
    total_edges: int
    unknown: list[str] = Field(description="Names that matched no entity (try graph_search)")


class SearchMatch(EntityCard):
    score: float
    match: str = Field(description="name: exact name or alias; words / partial: word overlap; embedding: similar "
                                   "meaning")


class GraphSearchResult(ToolResult):
    graph: str
    matches: list[SearchMatch]
