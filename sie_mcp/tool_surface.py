"""The tools as agents see them: thin, declared functions whose docstrings are the descriptions an LLM
reads. Logic lives in tools/; this file declares parameters (with descriptions and limits), results and
annotations once, for MCP and for the HTTP API alike.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, get_args, get_type_hints

import orjson
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata, func_metadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BeforeValidator, Field, ValidationError
from pydantic_core import InitErrorDetails

from engine.errors import EngineError
from sie_mcp.errors import MAX_DETAILS, TOTAL_ERRORS, tool_error
from sie_mcp.runtime import Runtime, RuntimeHandle
from tools import wire
from tools.context import TOOL_TASKS, Progress
from tools.graph_schemas import (
    BuildOntologyResult,
    GraphNeighborsResult,
    GraphPathResult,
    GraphSearchResult,
    GraphSubgraphResult,
)
from tools.schemas import (
    ClassifyResult,
    CollectionsResult,
    DeleteResult,
    EmbedResult,
    EntitiesResult,
    IndexResult,
    ModelsResult,
    RerankResult,
    SearchResult,
    ToolResult,
)

# The context the SDK gives a tool: its lifespan context is the RuntimeHandle our lifespans yield (mcp_server.py).
ToolCtx = Context[RuntimeHandle, Any]


async def _runtime(ctx: ToolCtx) -> Runtime:
    return await ctx.request_context.lifespan_context.get()


def _progress(ctx: ToolCtx) -> Progress:
    async def report(done: float, total: float | None, message: str | None) -> None:
        await ctx.report_progress(done, total, message)

    return report


async def _run(ctx: ToolCtx, tool: str, **kwargs: Any) -> CallToolResult:
    """Run a tools/ function; engine errors become tool errors. The result goes out as structured content
    plus one compact text block (`wire_content`; the SDK's default text block is indented JSON, about twice
    as large: slower to send and heavier in an agent's context). The structured content is parsed back from
    the result's JSON (a compiled parser; faster than a second walk of the model)."""
    try:
        runtime = await _runtime(ctx)
        result = await TOOLS[tool].impl(runtime.tool_context(_progress(ctx)), **kwargs)
    except EngineError as e:
        raise tool_error(e) from e
    text, structured = wire_content(result)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def wire_content(result: ToolResult) -> tuple[str, dict[str, Any]]:
    """A tool result as MCP sends it: the text block an agent reads (the compact JSON, or the result's
    summary where it is mostly numbers for programs) and the structured content (the whole result)."""
    text = wire.dumps(result)
    return result.agent_text(text).decode(), orjson.loads(text)


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

Texts = Annotated[str | list[str], Field(description="One text, or a list of texts (one result per text); at most "
                                                     "512 texts of 100,000 characters per call by default")]


def _model_doc(tool: str, note: str = "") -> str:
    """What a tool's `model` takes: the tasks tools/context.TOOL_TASKS allows it (what the tool enforces)."""
    tasks = TOOL_TASKS[tool]
    listed = tasks[0] if len(tasks) == 1 else ", ".join(tasks[:-1]) + " or " + tasks[-1]
    return (f"Model id from list_models (short id or Hugging Face id) whose task is {listed}{note}; omit for the "
            "server's default")


EmbedModel = Annotated[str | None, Field(description=_model_doc("embed"))]
RerankModel = Annotated[str | None, Field(description=_model_doc(
    "rerank", " (rerank: a cross-encoder; classify: an NLI model scoring entailment; the others: similarity)"))]
NerModel = Annotated[str | None, Field(description=_model_doc("extract_entities"))]
ClassifyModel = Annotated[str | None, Field(description=_model_doc(
    "classify", " (classify: an NLI model for your labels, or a trained classifier with its own labels)"))]


async def embed(
    texts: Texts,
    ctx: ToolCtx,
    model: EmbedModel = None,
    kind: Annotated[Literal["query", "document"] | None, Field(
        description="'query' for search queries, 'document' for passages: models with query/passage prompts "
                    "(e5, bge, Qwen3) need it for best results")] = None,
    dimensions: Annotated[PositiveInt | None, Field(
        description="Truncate vectors to this many dimensions (Matryoshka), re-normalised")] = None,
    normalize: Annotated[bool | None, Field(strict=True, description="L2-normalise (default: what the model card says)")] = None,
) -> Annotated[CallToolResult, EmbedResult]:
    """Embed texts into vectors, for programs that store or compare them (vector databases, clustering).

    The text of this result is a summary (model, dimensions, token counts, which inputs were truncated);
    the vectors themselves are in the structured result and the HTTP API, so they never fill your context.
    You rarely need vectors yourself: to find passages use `search` over a collection (`index_documents`
    first) or `rerank`; to label texts use `classify`. SPLADE models give sparse term weights (the summary
    shows each text's top terms), ColBERT models one vector per token (`representation` says which).
    Limits: 512 texts per call, 100,000 characters per text (server defaults).
    """
    return await _run(ctx, "embed", texts=texts, model=model, kind=kind, dimensions=dimensions,
                      normalize=normalize)


async def rerank(
    query: Annotated[str, Field(min_length=1, description="What you are looking for")],
    documents: Annotated[list[str], Field(min_length=1, description="Candidate passages to rank (at most 1000 by "
                                                                    "default)")],
    ctx: ToolCtx,
    model: RerankModel = None,
    top_k: Annotated[PositiveInt | None, Field(description="Return only the best k (default: all)")] = None,
    return_documents: Annotated[bool, Field(strict=True, description="Give each result its whole document instead "
                                                                     "of an ~80-character snippet")] = False,
) -> Annotated[CallToolResult, RerankResult]:
    """Rank documents by relevance to a query, best first: index into `documents`, score, and a snippet.

    Use it to keep only the few passages worth reading: results carry the original index and the first
    ~80 characters of each document, not the documents themselves (set `return_documents` for full text),
    so send `top_k` and read only those. With a cross-encoder model (list_models, task rerank) each
    (query, document) pair is scored jointly and the score is a probability; with an embedding model (the
    default unless the server sets a rerank model) documents are ranked by cosine similarity, and
    `method` says which. Scores have 4 decimals. Limits: 1000 documents per call (server default).
    """
    return await _run(ctx, "rerank", query=query, documents=documents, model=model, top_k=top_k,
                      return_documents=return_documents)


async def extract_entities(
    texts: Texts,
    ctx: ToolCtx,
    model: NerModel = None,
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
) -> Annotated[CallToolResult, EntitiesResult]:
    """Find named entities (people, organisations, places, dates, money, …) in texts.

    Returns per text the entities with their type, score (4 decimals) and character offsets (`start`,
    `end` index into the text you sent), so you can quote or link them without re-reading the text. The
    default model (spaCy en_core_web_sm, offline) finds the 18 OntoNotes types: PERSON, NORP
    (nationalities, religious/political groups), FAC (buildings, airports), ORG, GPE (countries, cities,
    states), LOC (other places), PRODUCT, EVENT, WORK_OF_ART, LAW, LANGUAGE, DATE, TIME, PERCENT, MONEY,
    QUANTITY, ORDINAL, CARDINAL; its score is always 1.0 (no probabilities). Other NER models in
    list_models have their own types (bert-base-NER: PER, ORG, LOC, MISC; zero-shot gliner-*: the
    labels you send). Long texts are read whole (in overlapping windows on transformer
    models). Limits: 512 texts per call.
    """
    return await _run(ctx, "extract_entities", texts=texts, model=model, labels=labels,
                      aggregation=aggregation, threshold=threshold, nested=nested, multi_label=multi_label)


async def classify(
    texts: Texts,
    ctx: ToolCtx,
    labels: Annotated[list[str] | None, Field(description="Flat label set, e.g. ['billing', 'bug', 'praise']")] = None,
    taxonomy: Annotated[str | list[str] | dict[str, Any] | None, Field(
        description="A category tree: the name of a taxonomy the server has registered, paths like "
                    "'Electronics > Computers > Laptops', or a nested object "
                    "{'Electronics': {'Computers': ['Laptops', 'Desktops']}}")] = None,
    model: ClassifyModel = None,
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
) -> Annotated[CallToolResult, ClassifyResult]:
    """Classify texts into labels you give, or walk a deep taxonomy to the best category path.

    Give `labels` for a flat choice or `taxonomy` for a hierarchy: the taxonomy is searched on the server,
    so you get e.g. ['Electronics', 'Computers', 'Laptops'] without reading the tree. With an embedding
    model (the default) a score is the cosine similarity between the text and the label: it ranks labels
    for one text, it is not a probability, and values around 0.2-0.6 are normal. `confidence` per text is
    the margin between the best and the runner-up: near 0 means a toss-up. With an NLI model (zero-shot)
    labels become hypotheses and scores probabilities; a trained classifier scores its own labels (omit
    labels). Limits: 512 texts and 2000 labels or categories per call (server defaults).
    """
    return await _run(ctx, "classify", texts=texts, labels=labels, taxonomy=taxonomy, model=model,
                      top_k=top_k, beam=beam, search=search, rescore_model=rescore_model,
                      hypothesis_template=hypothesis_template, multi_label=multi_label)


CollectionName = Annotated[str, Field(description="Collection name: 3-64 letters, digits, '-' or '_'")]


async def index_documents(
    collection: CollectionName,
    documents: Annotated[list[str | dict[str, Any]], Field(
        min_length=1, description="Documents: strings, or objects {id?, text, metadata?} (metadata: a flat "
                                  "object of strings, numbers, booleans to filter on). At most 512 per call")],
    ctx: ToolCtx,
    model: Annotated[str | None, Field(description="Embedding model (task embed) for a new collection; an "
                                                   "existing one keeps the model it was created with")] = None,
) -> Annotated[CallToolResult, IndexResult]:
    """Store documents in a server-side collection so you can `search` them later without reading them.

    The collection is created on first use and persists across restarts. Long documents are split into
    ~800-character chunks with their character offsets; each chunk is embedded once, here. A document
    sent again with the same `id` replaces its old chunks (without an id, one is derived from the text,
    so re-sending the same text is harmless). Returns counts and the ids, never the text.
    """
    return await _run(ctx, "index_documents", collection=collection, documents=documents, model=model)


async def search(
    collection: CollectionName,
    query: Annotated[str, Field(min_length=1, description="What you are looking for, in plain words")],
    ctx: ToolCtx,
    top_k: Annotated[int, Field(ge=1, le=100, description="How many chunks to return"),
                     BeforeValidator(_whole_number)] = 5,
    filter: Annotated[dict[str, Any] | None, Field(
        description="Metadata filter, fields ANDed: {'brand': 'Acme', 'price': {'$lt': 100}, 'color': "
                    "{'$in': ['red', 'blue']}}; operators $eq $ne $gt $gte $lt $lte $in $nin")] = None,
    rerank: Annotated[bool, Field(strict=True, description="Re-score a wider set of nearest chunks with the rerank model "
                                              "(a cross-encoder when the server has one): better order, slower")] = False,
    return_text: Annotated[bool, Field(strict=True, description="Give each hit its whole chunk (up to ~800 characters) "
                                                   "instead of a ~160-character snippet")] = False,
) -> Annotated[CallToolResult, SearchResult]:
    """Search a collection by meaning: the chunks nearest to the query, best first.

    Each hit has the document `id`, the `chunk` number, its score (cosine similarity, or the reranker's
    score with rerank=true; 4 decimals), the chunk's character offsets in the document, its metadata and a
    snippet. Read the snippets, then ask again with return_text=true (or a narrower filter) only for what
    matters. Create collections with `index_documents`; `list_collections` shows them.
    """
    return await _run(ctx, "search", collection=collection, query=query, top_k=top_k, filter=filter,
                      rerank=rerank, return_text=return_text)


async def list_collections(ctx: ToolCtx) -> Annotated[CallToolResult, CollectionsResult]:
    """List the server's collections: name, embedding model, dimensions and number of chunks."""
    return await _run(ctx, "list_collections")


async def delete_collection(collection: CollectionName, ctx: ToolCtx) -> Annotated[CallToolResult, DeleteResult]:
    """Delete a collection and everything indexed in it (cannot be undone)."""
    return await _run(ctx, "delete_collection", collection=collection)


async def list_models(ctx: ToolCtx) -> Annotated[CallToolResult, ModelsResult]:
    """List the models this server can run: id, task (which tools take it), whether it is usable here.

    `availability` says whether a call will work now: bundled or local (on this server), cached (in the
    Hugging Face cache), downloadable (fetched on first use: the first call waits), or unavailable (offline
    and not cached, or a missing package or directory; `note` says why). `state` says whether it is loaded
    (device) or loads on first use (cold). `default_for` names the tools that use it when you name none.
    Pass an `id` as `model` to a tool of its task.
    """
    return await _run(ctx, "list_models")


GraphId = Annotated[str, Field(min_length=1, max_length=64, description="Graph id returned by build_ontology")]
EntityName = Annotated[str, Field(min_length=1, description="Entity name, any alias, or its id")]


async def build_ontology(
    ctx: ToolCtx,
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
) -> Annotated[CallToolResult, BuildOntologyResult]:
    """Build a knowledge graph from documents, or add documents to one: entities (people, organisations,
    places …) merged across spellings and aliases ("IBM" = "International Business Machines"), relations
    between them (subject-verb-object facts such as acquire / work_for, and co-occurrence in a sentence),
    each with the sentence that states it, and the entity types as ontology classes.

    Returns a compact summary (graph id, counts, top entities, relation types), never the graph. Then
    navigate with graph_search, graph_neighbors, graph_path and graph_subgraph instead of re-reading the
    documents. Up to max_texts documents per call: call again with the same `graph` to add more.
    """
    return await _run(ctx, "build_ontology", texts=texts, documents=documents, labels=labels,
                      model=model, graph=graph, taxonomy=taxonomy)


async def graph_neighbors(
    graph: GraphId,
    entity: EntityName,
    ctx: ToolCtx,
    depth: Annotated[int, Field(ge=1, le=3, description="Hops to follow"), BeforeValidator(_whole_number)] = 1,
    relation: Annotated[str | None, Field(description="Follow only this relation, e.g. 'acquire' or "
                                                      "'co_occurs_with'")] = None,
    limit: Annotated[int, Field(ge=1, le=50, description="Neighbours to return"), BeforeValidator(_whole_number)] = 20,
) -> Annotated[CallToolResult, GraphNeighborsResult]:
    """What an entity is connected to in a graph: neighbours with the relation that links them and one
    evidence sentence each, nearest and strongest first. Use graph_search first if unsure of the name."""
    return await _run(ctx, "graph_neighbors", graph=graph, entity=entity, depth=depth,
                      relation=relation, limit=limit)


async def graph_path(graph: GraphId, source: EntityName, target: EntityName, ctx: ToolCtx) -> Annotated[CallToolResult, GraphPathResult]:
    """How two entities are connected: the shortest chain of relations between them (at most 6 hops), each
    hop with its evidence sentence; `found` is false when they are not connected."""
    return await _run(ctx, "graph_path", graph=graph, source=source, target=target)


async def graph_subgraph(
    graph: GraphId,
    entities: Annotated[list[str], Field(min_length=1, max_length=50, description="Entity names or aliases")],
    ctx: ToolCtx,
    limit: Annotated[int, Field(ge=1, le=50, description="Edges to return"), BeforeValidator(_whole_number)] = 50,
) -> Annotated[CallToolResult, GraphSubgraphResult]:
    """The relations among a set of entities (heaviest first, with evidence): how a handful of people,
    organisations and places relate to each other. Names that match nothing are listed in `unknown`."""
    return await _run(ctx, "graph_subgraph", graph=graph, entities=entities, limit=limit)


async def graph_search(
    graph: GraphId,
    query: Annotated[str, Field(min_length=1, description="A name, alias, or description of an entity")],
    ctx: ToolCtx,
    limit: Annotated[int, Field(ge=1, le=50, description="Matches to return"), BeforeValidator(_whole_number)] = 10,
) -> Annotated[CallToolResult, GraphSearchResult]:
    """Find entities in a graph by name or alias (exact, then word overlap), falling back to embedding
    similarity for descriptions. Returns ids, types and aliases to pass to the other graph tools."""
    return await _run(ctx, "graph_search", graph=graph, query=query, limit=limit)


@dataclass(frozen=True)
class SurfaceTool:
    name: str
    title: str
    declared: Callable[..., Awaitable[Any]]  # the MCP-facing function (schema, docstring)
    impl_path: str  # "module:function" in tools/, called as impl(ToolContext, **arguments)
    annotations: ToolAnnotations

    @cached_property
    def impl(self) -> Callable[..., Awaitable[ToolResult]]:
        """The tools/ function, imported on first use: declaring the tools (and answering `initialize`,
        `tools/list`) does not import torch."""
        module, _, name = self.impl_path.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def description(self) -> str:
        """The docstring without its indentation: what an LLM reads (every line would otherwise carry the
        four spaces of the function body)."""
        return inspect.cleandoc(self.declared.__doc__ or "")

    @cached_property
    def result_model(self) -> type[ToolResult]:
        """The model of the structured result. A declared tool returns `Annotated[CallToolResult, Model]`: the
        CallToolResult `_run` builds, whose structured content the SDK checks against Model, the schema it
        publishes as the tool's outputSchema."""
        _, model = get_args(get_type_hints(self.declared, include_extras=True)["return"])
        return model

    @cached_property
    def metadata(self) -> FuncMetadata:
        """The SDK's view of the declared function (what MCPServer validates arguments with); built once."""
        return bounded(func_metadata(self.declared, skip_names=["ctx"]))


class BoundedFuncMetadata(FuncMetadata):
    """The SDK's argument validation, with at most MAX_DETAILS errors kept (the count of all of them rides on
    the error, `sie_mcp.errors.argument_errors`). The SDK puts the whole `ValidationError` text in the tool
    error an agent reads: for `{"texts": [1] * 50000}` that was 9.4 MB."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().validate_arguments(arguments_to_validate)
        except ValidationError as e:
            if e.error_count() <= MAX_DETAILS:
                raise
            first = [InitErrorDetails(type=d["type"], loc=d["loc"], input=d["input"], **({"ctx": d["ctx"]} if "ctx" in d
                                                                                           else {}))
                     for d in e.errors(include_url=False)[:MAX_DETAILS]]
            bounded_error = ValidationError.from_exception_data(
                f"{e.title} (the first {MAX_DETAILS} of {e.error_count()} errors)", first)
            setattr(bounded_error, TOTAL_ERRORS, e.error_count())
            raise bounded_error from None


def bounded(metadata: FuncMetadata) -> FuncMetadata:
    return BoundedFuncMetadata.model_construct(**{name: getattr(metadata, name) for name in FuncMetadata.model_fields})


_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, destructive_hint=False, open_world_hint=False)
# Collections are server state: reading it is idempotent only until someone indexes or deletes.
_READS_STATE = ToolAnnotations(read_only_hint=True, idempotent_hint=False, destructive_hint=False, open_world_hint=False)
_WRITES = ToolAnnotations(read_only_hint=False, idempotent_hint=True, destructive_hint=False, open_world_hint=False)
_DELETES = ToolAnnotations(read_only_hint=False, idempotent_hint=True, destructive_hint=True, open_world_hint=False)


TOOLS: dict[str, SurfaceTool] = {t.name: t for t in [
    SurfaceTool("embed", "Embed texts", embed, "tools.embed:embed", _READ_ONLY),
    SurfaceTool("rerank", "Rerank documents", rerank, "tools.rerank:rerank", _READ_ONLY),
    SurfaceTool("extract_entities", "Extract named entities", extract_entities, "tools.entities:extract_entities",
                _READ_ONLY),
    SurfaceTool("classify", "Classify into labels or a taxonomy", classify, "tools.classify:classify", _READ_ONLY),
    SurfaceTool("list_models", "List models", list_models, "tools.models:list_models_async", _READ_ONLY),
    SurfaceTool("index_documents", "Index documents into a collection", index_documents,
                "tools.retrieval:index_documents", _WRITES),
    SurfaceTool("search", "Search a collection", search, "tools.retrieval:search", _READS_STATE),
    SurfaceTool("list_collections", "List collections", list_collections, "tools.retrieval:list_collections",
                _READS_STATE),
    SurfaceTool("delete_collection", "Delete a collection", delete_collection, "tools.retrieval:delete_collection",
                _DELETES),
    SurfaceTool("build_ontology", "Build a knowledge graph", build_ontology, "tools.ontology:build_ontology",
                ToolAnnotations(read_only_hint=False, idempotent_hint=False, destructive_hint=False, open_world_hint=False)),
    SurfaceTool("graph_neighbors", "Neighbours of an entity", graph_neighbors, "tools.ontology:graph_neighbors",
                _READ_ONLY),
    SurfaceTool("graph_path", "Path between two entities", graph_path, "tools.ontology:graph_path", _READ_ONLY),
    SurfaceTool("graph_subgraph", "Relations among entities", graph_subgraph, "tools.ontology:graph_subgraph",
                _READ_ONLY),
    SurfaceTool("graph_search", "Find entities in a graph", graph_search, "tools.ontology:graph_search", _READ_ONLY),
]}
