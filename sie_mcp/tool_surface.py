"""The tools as agents see them: thin, declared functions whose docstrings are the descriptions an LLM
reads. Logic lives in tools/; this file declares parameters (with descriptions and limits), results and
annotations once, for MCP and for the HTTP API alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal

import orjson
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata, func_metadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from pydantic_core import InitErrorDetails

from engine.engine import Engine
from engine.errors import EngineError
from sie_mcp.errors import tool_error
from tools import classify as classify_tool
from tools import embed as embed_tool
from tools import entities as entities_tool
from tools import models as models_tool
from tools import ontology as ontology_tool
from tools import rerank as rerank_tool
from tools import wire
from tools.context import Defaults, Limits, Progress, ToolContext
from tools.graph_schemas import (
    BuildOntologyResult,
    GraphNeighborsResult,
    GraphPathResult,
    GraphSearchResult,
    GraphSubgraphResult,
)
from tools.schemas import ClassifyResult, EmbedResult, EntitiesResult, ModelsResult, RerankResult
from tools.taxonomy import TaxonomyStore


@dataclass(frozen=True)
class Runtime:
    """What the surface needs at request time; injected through the MCP lifespan and FastAPI state."""

    engine: Engine
    defaults: Defaults
    limits: Limits
    taxonomies: TaxonomyStore = field(default_factory=TaxonomyStore)  # registered taxonomies, label cache
    graphs: ontology_tool.GraphService | None = None

    def tool_context(self, progress: Progress | None = None) -> ToolContext:
        return ToolContext(self.engine, self.defaults, self.limits, progress, self.taxonomies, self.graphs)


def _runtime(ctx: Context) -> Runtime:
    return ctx.request_context.lifespan_context


def _progress(ctx: Context) -> Progress:
    async def report(done: float, total: float | None, message: str | None) -> None:
        await ctx.report_progress(done, total, message)

    return report


async def _run(ctx: Context, impl: Callable[..., Awaitable[BaseModel]], **kwargs: Any) -> CallToolResult:
    """Run a tools/ function; engine errors become tool errors. The result goes out as structured content
    plus one compact JSON text block (the SDK's default text block is indented JSON, about twice as large:
    slower to send and heavier in an agent's context). The structured content is parsed back from that
    text (a compiled parser; faster than a second walk of the model), so the two are the same JSON."""
    try:
        result = await impl(_runtime(ctx).tool_context(_progress(ctx)), **kwargs)
    except EngineError as e:
        raise tool_error(e) from e
    text, structured = wire_content(result)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def wire_content(result: BaseModel) -> tuple[str, dict[str, Any]]:
    """A tool result as MCP sends it: the compact JSON text block and the structured content (the same JSON)."""
    text = wire.dumps(result)
    return text.decode(), orjson.loads(text)


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer: 3 and 3.0, never `true` or "3" (pydantic's lax mode takes both)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer")
    return value


# Integer arguments read as JSON Schema reads them (`_whole_number`); the bounds come before the validator so
# that the schema says `minimum`/`maximum`.
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]
LabelsPerText = Annotated[int, Field(ge=1, le=50), BeforeValidator(_whole_number)]
BeamWidth = Annotated[int, Field(ge=1, le=20), BeforeValidator(_whole_number)]

Texts = Annotated[str | list[str], Field(description="One text, or a list of texts (one result per text)")]
ModelName = Annotated[str | None, Field(description="Model id from list_models (short id or Hugging Face id); "
                                                    "omit for the default")]


async def embed(
    texts: Texts,
    ctx: Context,
    model: ModelName = None,
    kind: Annotated[Literal["query", "document"] | None, Field(
        description="'query' for search queries, 'document' for passages: models with query/passage prompts "
                    "(e5, bge) need it for best results")] = None,
    dimensions: Annotated[PositiveInt | None, Field(
        description="Truncate vectors to this many dimensions (Matryoshka), re-normalised")] = None,
    normalize: Annotated[bool | None, Field(strict=True, description="L2-normalise (default: what the model card says)")] = None,
) -> EmbedResult:
    """Embed texts into vectors for semantic search, clustering or deduplication.

    Returns one vector per text plus token counts and truncation flags. Compare vectors with dot product
    when `normalized` is true. SPLADE models return sparse term weights (readable terms) and ColBERT models
    one vector per token (`representation` says which). To rank documents for a query use `rerank`; to
    label texts use `classify`.
    """
    return await _run(ctx, embed_tool.embed, texts=texts, model=model, kind=kind, dimensions=dimensions,
                      normalize=normalize)


async def rerank(
    query: Annotated[str, Field(min_length=1, description="What you are looking for")],
    documents: Annotated[list[str], Field(min_length=1, description="Candidate passages to rank")],
    ctx: Context,
    model: ModelName = None,
    top_k: Annotated[PositiveInt | None, Field(description="Return only the best k (default: all)")] = None,
) -> RerankResult:
    """Rank documents by relevance to a query, best first, with scores and original indices.

    Use it to keep only the few passages worth reading. With a cross-encoder model each (query, document)
    pair is scored jointly (most accurate); with an embedding model documents are ranked by cosine
    similarity, and `method` says which was used.
    """
    return await _run(ctx, rerank_tool.rerank, query=query, documents=documents, model=model, top_k=top_k)


async def extract_entities(
    texts: Texts,
    ctx: Context,
    model: ModelName = None,
    labels: Annotated[list[str] | None, Field(
        description="Entity types. Fixed-type models (the default): keep only these, e.g. ['PERSON', 'ORG'] or "
                    "everyday words ['person', 'company', 'place']. Zero-shot models: the types to find "
                    "(required), e.g. ['company', 'product', 'price']")] = None,
    aggregation: Annotated[Literal["simple", "first", "average", "max"] | None, Field(
        description="Token-classification models: how word pieces become entities (default first: a word takes "
                    "its first piece's tag)")] = None,
    threshold: Annotated[float | None, Field(ge=0, le=1, description="Zero-shot models: minimum span score "
                                                                     "(default 0.5)")] = None,
    nested: Annotated[bool, Field(strict=True, description="Zero-shot models: allow entities inside entities")] = False,
    multi_label: Annotated[bool, Field(strict=True, description="Zero-shot models: a span may carry several types")] = False,
) -> EntitiesResult:
    """Find named entities (people, organisations, places, dates, money, …) in texts.

    Returns per text the entities with their type, score and character offsets, so you can quote or link
    them without re-reading the text. The default model (spaCy en_core_web_sm, offline) finds the 18
    OntoNotes types: PERSON, NORP (nationalities, religious/political groups), FAC (buildings, airports),
    ORG, GPE (countries, cities, states), LOC (other places), PRODUCT, EVENT, WORK_OF_ART, LAW, LANGUAGE,
    DATE, TIME, PERCENT, MONEY, QUANTITY, ORDINAL, CARDINAL; its score is always 1.0 (no probabilities).
    Long texts are read whole (in overlapping windows on transformer models).
    """
    return await _run(ctx, entities_tool.extract_entities, texts=texts, model=model, labels=labels,
                      aggregation=aggregation, threshold=threshold, nested=nested, multi_label=multi_label)


async def classify(
    texts: Texts,
    ctx: Context,
    labels: Annotated[list[str] | None, Field(description="Flat label set, e.g. ['billing', 'bug', 'praise']")] = None,
    taxonomy: Annotated[str | list[str] | dict[str, Any] | None, Field(
        description="A category tree: the name of a taxonomy the server has registered, paths like "
                    "'Electronics > Computers > Laptops', or a nested object "
                    "{'Electronics': {'Computers': ['Laptops', 'Desktops']}}")] = None,
    model: ModelName = None,
    top_k: Annotated[LabelsPerText, Field(description="Labels to return per text")] = 3,
    beam: Annotated[BeamWidth, Field(description="Taxonomy branches kept per level (search='beam')")] = 3,
    search: Annotated[Literal["auto", "flat", "beam"], Field(
        description="Taxonomies: flat scores every leaf at once (default, most accurate with an embedding "
                    "model); beam walks level by level (used with rescore_model); auto picks")] = "auto",
    rescore_model: Annotated[str | None, Field(
        description="A cross-encoder or NLI model that re-scores each level's candidates in a beam walk")] = None,
    hypothesis_template: Annotated[str | None, Field(
        description="NLI models: the hypothesis per label, '{}' is the label (default 'This example is {}.')")] = None,
    multi_label: Annotated[bool, Field(strict=True,
        description="NLI models: score each label independently (several can be true)")] = False,
) -> ClassifyResult:
    """Classify texts into labels, or walk a deep taxonomy to the best category path.

    Give `labels` for a flat choice or `taxonomy` for a hierarchy: the taxonomy is searched on the server,
    so you get e.g. ['Electronics', 'Computers', 'Laptops'] without reading the tree. `confidence` per
    text is the margin between the best and the runner-up: near 0 means a toss-up. With an NLI model
    (zero-shot) labels become hypotheses; a trained classifier scores its own labels (omit labels).
    """
    return await _run(ctx, classify_tool.classify, texts=texts, labels=labels, taxonomy=taxonomy, model=model,
                      top_k=top_k, beam=beam, search=search, rescore_model=rescore_model,
                      hypothesis_template=hypothesis_template, multi_label=multi_label)


async def list_models(ctx: Context) -> ModelsResult:
    """List the models this server can run: id, task, description, whether resident, and which tools use
    them by default. Pass an id as `model` to any tool."""
    return await _run(ctx, _list_models_impl)


async def _list_models_impl(tc: ToolContext) -> ModelsResult:
    return models_tool.list_models(tc)


GraphId = Annotated[str, Field(min_length=1, max_length=64, description="Graph id returned by build_ontology")]
EntityName = Annotated[str, Field(min_length=1, description="Entity name, any alias, or its id")]


async def build_ontology(
    ctx: Context,
    texts: Annotated[str | list[str] | None, Field(
        description="Documents as plain strings (ids are derived from their content)")] = None,
    documents: Annotated[list[dict[str, Any]] | None, Field(
        description="Documents with ids: [{'id': 'report-1', 'text': '…'}]; the id appears in evidence, and a "
                    "known id replaces that document")] = None,
    labels: Annotated[list[str] | None, Field(
        description="Keep only these entity types, e.g. ['person', 'organization', 'place'] (default: all "
                    "named things; dates and numbers are never nodes)")] = None,
    model: Annotated[str | None, Field(description="Parse model (default: en_core_web_sm, spaCy)")] = None,
    graph: Annotated[str | None, Field(
        description="Add to this graph (created if new); omit to start a new graph")] = None,
    taxonomy: Annotated[list[str] | dict[str, Any] | None, Field(
        description="Optional category tree for the entity types, e.g. ['Agent > Person', 'Agent > "
                    "Organization', 'Place']: each type is placed under its best category with classify")] = None,
) -> BuildOntologyResult:
    """Build a knowledge graph from documents, or add documents to one: entities (people, organisations,
    places …) merged across spellings and aliases ("IBM" = "International Business Machines"), relations
    between them (subject-verb-object facts such as acquire / work_for, and co-occurrence in a sentence),
    each with the sentence that states it, and the entity types as ontology classes.

    Returns a compact summary (graph id, counts, top entities, relation types), never the graph. Then
    navigate with graph_search, graph_neighbors, graph_path and graph_subgraph instead of re-reading the
    documents. Up to max_texts documents per call: call again with the same `graph` to add more.
    """
    return await _run(ctx, ontology_tool.build_ontology, texts=texts, documents=documents, labels=labels,
                      model=model, graph=graph, taxonomy=taxonomy)


async def graph_neighbors(
    graph: GraphId,
    entity: EntityName,
    ctx: Context,
    depth: Annotated[int, Field(ge=1, le=3, description="Hops to follow"), BeforeValidator(_whole_number)] = 1,
    relation: Annotated[str | None, Field(description="Follow only this relation, e.g. 'acquire' or "
                                                      "'co_occurs_with'")] = None,
    limit: Annotated[int, Field(ge=1, le=50, description="Neighbours to return"), BeforeValidator(_whole_number)] = 20,
) -> GraphNeighborsResult:
    """What an entity is connected to in a graph: neighbours with the relation that links them and one
    evidence sentence each, nearest and strongest first. Use graph_search first if unsure of the name."""
    return await _run(ctx, ontology_tool.graph_neighbors, graph=graph, entity=entity, depth=depth,
                      relation=relation, limit=limit)


async def graph_path(graph: GraphId, source: EntityName, target: EntityName, ctx: Context) -> GraphPathResult:
    """How two entities are connected: the shortest chain of relations between them (at most 6 hops), each
    hop with its evidence sentence; `found` is false when they are not connected."""
    return await _run(ctx, ontology_tool.graph_path, graph=graph, source=source, target=target)


async def graph_subgraph(
    graph: GraphId,
    entities: Annotated[list[str], Field(min_length=1, max_length=50, description="Entity names or aliases")],
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=50, description="Edges to return"), BeforeValidator(_whole_number)] = 50,
) -> GraphSubgraphResult:
    """The relations among a set of entities (heaviest first, with evidence): how a handful of people,
    organisations and places relate to each other. Names that match nothing are listed in `unknown`."""
    return await _run(ctx, ontology_tool.graph_subgraph, graph=graph, entities=entities, limit=limit)


async def graph_search(
    graph: GraphId,
    query: Annotated[str, Field(min_length=1, description="A name, alias, or description of an entity")],
    ctx: Context,
    limit: Annotated[int, Field(ge=1, le=50, description="Matches to return"), BeforeValidator(_whole_number)] = 10,
) -> GraphSearchResult:
    """Find entities in a graph by name or alias (exact, then word overlap), falling back to embedding
    similarity for descriptions. Returns ids, types and aliases to pass to the other graph tools."""
    return await _run(ctx, ontology_tool.graph_search, graph=graph, query=query, limit=limit)


@dataclass(frozen=True)
class SurfaceTool:
    name: str
    title: str
    declared: Callable[..., Awaitable[Any]]  # the MCP-facing function (schema, docstring)
    impl: Callable[..., Any]  # the tools/ function: impl(ToolContext, **arguments)
    annotations: ToolAnnotations

    @property
    def description(self) -> str:
        return (self.declared.__doc__ or "").strip()

    @cached_property
    def metadata(self) -> FuncMetadata:
        """The SDK's view of the declared function (what MCPServer validates arguments with); built once."""
        return bounded(func_metadata(self.declared, skip_names=["ctx"]))


MAX_ARGUMENT_ERRORS = 5


class BoundedFuncMetadata(FuncMetadata):
    """The SDK's argument validation, with at most MAX_ARGUMENT_ERRORS errors reported. The SDK puts the whole
    `ValidationError` text in the tool error an agent reads: for `{"texts": [1] * 50000}` that was 9.4 MB."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().validate_arguments(arguments_to_validate)
        except ValidationError as e:
            if e.error_count() <= MAX_ARGUMENT_ERRORS:
                raise
            first = [InitErrorDetails(type=d["type"], loc=d["loc"], input=d["input"], **({"ctx": d["ctx"]} if "ctx" in d
                                                                                           else {}))
                     for d in e.errors(include_url=False)[:MAX_ARGUMENT_ERRORS]]
            raise ValidationError.from_exception_data(f"{e.title} (the first {MAX_ARGUMENT_ERRORS} of "
                                                      f"{e.error_count()} errors)", first) from None


def bounded(metadata: FuncMetadata) -> FuncMetadata:
    return BoundedFuncMetadata.model_construct(**{name: getattr(metadata, name) for name in FuncMetadata.model_fields})


_READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, destructiveHint=False, openWorldHint=False)


TOOLS: dict[str, SurfaceTool] = {t.name: t for t in [
    SurfaceTool("embed", "Embed texts", embed, embed_tool.embed, _READ_ONLY),
    SurfaceTool("rerank", "Rerank documents", rerank, rerank_tool.rerank, _READ_ONLY),
    SurfaceTool("extract_entities", "Extract named entities", extract_entities, entities_tool.extract_entities,
                _READ_ONLY),
    SurfaceTool("classify", "Classify into labels or a taxonomy", classify, classify_tool.classify, _READ_ONLY),
    SurfaceTool("list_models", "List models", list_models, _list_models_impl, _READ_ONLY),
    SurfaceTool("build_ontology", "Build a knowledge graph", build_ontology, ontology_tool.build_ontology,
                ToolAnnotations(readOnlyHint=False, idempotentHint=False, destructiveHint=False, openWorldHint=False)),
    SurfaceTool("graph_neighbors", "Neighbours of an entity", graph_neighbors, ontology_tool.graph_neighbors,
                _READ_ONLY),
    SurfaceTool("graph_path", "Path between two entities", graph_path, ontology_tool.graph_path, _READ_ONLY),
    SurfaceTool("graph_subgraph", "Relations among entities", graph_subgraph, ontology_tool.graph_subgraph,
                _READ_ONLY),
    SurfaceTool("graph_search", "Find entities in a graph", graph_search, ontology_tool.graph_search, _READ_ONLY),
]}
