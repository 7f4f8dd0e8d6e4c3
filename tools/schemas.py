"""Typed results of every tool (structured output for MCP, response bodies for HTTP)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from engine.availability import Availability
from tools import wire
from tools.wire import Float32Rows, Float32Vector

SCORE_DECIMALS = 4


def _round_score(value: float) -> float:
    # Four decimals: enough to rank and threshold by; the float32 noise in the last digits (which differs
    # between identical calls batched differently) never reaches an agent.
    return round(float(value), SCORE_DECIMALS)


Score = Annotated[float, AfterValidator(_round_score)]
"""A score as results carry it: rounded once, where the result is built."""

SNIPPET_CHARS = 160


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of `text`, cut at a word boundary near `limit` characters, with '…' when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip() + "…"


class ToolResult(BaseModel):
    """A tool's typed result. `structuredContent` and HTTP bodies carry all of it; the MCP text block (what
    an agent's context receives) is `agent_text`, the same JSON unless a result is mostly numbers for
    programs (embed)."""

    def agent_summary(self) -> Any | None:
        """What the text block holds instead of the whole result, or None for the whole result."""
        return None

    def agent_text(self, full_json: bytes) -> bytes:
        """The MCP text block, given the result's JSON (`wire.dumps(self)`)."""
        summary = self.agent_summary()
        return full_json if summary is None else wire.dumps(summary)


class SparseEmbedding(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    token_ids: list[int] = Field(description="Vocabulary ids of the heaviest terms, highest weight first")
    weights: Float32Vector
    tokens: list[str] = Field(description="The terms themselves (readable: what the text is 'about')")


class EmbedResult(ToolResult):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = Field(description="Catalog id of the model that produced the vectors")
    representation: Literal["dense", "sparse", "multi_vector"] = Field(
        description="dense: `embeddings`; sparse (SPLADE): `sparse_embeddings`, compare by dot product over "
                    "shared terms; multi_vector (ColBERT): `multi_vector_embeddings`, one vector per token, "
                    "compare with MaxSim")
    dimensions: int = Field(description="Length of each vector (vocabulary size for sparse)")
    normalized: bool = Field(description="Whether vectors are L2-normalised (dot product = cosine)")
    embeddings: Float32Rows = Field(description="Dense: one vector per input text, in input order")
    sparse_embeddings: list[SparseEmbedding] | None = Field(default=None, description="Sparse: one per input text")
    multi_vector_embeddings: list[Float32Rows] | None = Field(
        default=None, description="Multi-vector: per input text, one vector per token")
    token_counts: list[int] = Field(description="Tokens per input after truncation")
    truncated: list[bool] = Field(description="True where an input was longer than the model's max length")

    def agent_summary(self) -> Any | None:
        """Vectors are for programs: an agent reads what was computed, not 384 numbers per text."""
        count = len(self.token_counts)
        summary: dict[str, Any] = {
            "model": self.model, "representation": self.representation, "count": count,
            "dimensions": self.dimensions, "normalized": self.normalized, "token_counts": self.token_counts,
            "truncated": [i for i, cut in enumerate(self.truncated) if cut],
            "vectors": "not shown in this text: they are in the structured result (structuredContent) and "
                       "the HTTP API (POST /v1/tools/embed, /v1/embeddings). To compare texts call rerank, "
                       "classify or search instead of reading vectors"}
        if self.sparse_embeddings is not None:
            summary["top_terms"] = [v.tokens[:8] for v in self.sparse_embeddings]
        return summary


class RankedDocument(BaseModel):
    index: int = Field(description="Position of the document in the request")
    score: Score = Field(description="Relevance, 4 decimals: cross-encoder probability, cosine similarity, MaxSim "
                                     "or sparse dot product (see `method`)")
    text: str = Field(description="The document's first ~80 characters ('…' when cut), or all of it with "
                                  "return_documents=true")


class RerankResult(ToolResult):
    model: str
    method: Literal["cross-encoder", "embedding-cosine", "late-interaction", "sparse-dot"] = Field(
        description="cross-encoder: the model scored each (query, document) pair; embedding-cosine: the model "
                    "is an embedder, so documents are ranked by cosine similarity to the query; late-interaction: "
                    "ColBERT MaxSim over token vectors; sparse-dot: SPLADE term overlap")
    results: list[RankedDocument] = Field(description="Best first")
    truncated: list[bool] = Field(description="Per document (request order): input cut at the model's max length")


class Entity(BaseModel):
    text: str = Field(description="The entity's surface text, exactly as in the input")
    label: str = Field(description="Entity type, e.g. PERSON, ORG, GPE (spaCy) or PER, ORG, LOC (CoNLL models)")
    score: Score = Field(description="4 decimals. token-classification: mean probability of the entity's tokens "
                                     "(or words); spacy: always 1.0 (its parser makes decisions, not "
                                     "probabilities); zero-shot: the span's probability")
    start: int = Field(description="Character offset where the entity starts")
    end: int = Field(description="Character offset one past its end")


class EntitiesResult(ToolResult):
    model: str
    method: Literal["spacy", "token-classification", "zero-shot"] = Field(
        default="token-classification", description="spacy: a spaCy pipeline; token-classification: a transformer "
                                            "tagging tokens (long texts in overlapping windows); zero-shot: "
                                            "entity types given per call")
    aggregation: str | None = Field(default=None, description="token-classification: how tokens became entities "
                                                      "(simple | first | average | max)")
    entities: list[list[Entity]] = Field(description="One list per input text, in input order")
    truncated: list[bool] = Field(description="Always false for entities: long texts are read in windows")


class LabelScore(BaseModel):
    label: str = Field(description="The label, or for a taxonomy the deepest category reached")
    path: list[str] = Field(description="For a taxonomy: categories from the root down to `label`")
    score: Score = Field(description="Higher is better: cosine similarity (embedding; mean over the levels of a "
                                     "taxonomy path), or a probability (classifier, NLI, re-scoring model); "
                                     "4 decimals. Compare scores within one call, not across models")


class ClassifyResult(ToolResult):
    model: str
    method: Literal["embedding-similarity", "sequence-classifier", "nli-zero-shot", "cross-encoder-rescored",
                    "gliner2"]
    search: Literal["flat", "beam"] | None = Field(
        default=None, description="Taxonomies: flat = every leaf scored at once; beam = walked level by level")
    results: list[list[LabelScore]] = Field(description="Per input text, best first, at most top_k")
    confidence: list[float] = Field(
        default_factory=list, description="Per input text: best score minus the runner-up's. Near 0 means the "
                                          "top two are a toss-up (show both, or ask); large means a clear winner")




class ModelCard(BaseModel):
    id: str
    hf_id: str | None
    task: str = Field(description="embed | rerank | ner | classify | sparse | multi_vector | extract: the tools "
                                  "that take it (embed, sparse, multi_vector: embed, rerank, search; rerank: "
                                  "rerank; ner: extract_entities; classify: classify; embed models also classify; "
                                  "extract (GLiNER2): extract_entities, extract_relations, classify, extract)")
    tasks: list[str] = Field(default_factory=list, description="What it does: its task, or for a GLiNER2 "
                                                               "model (task extract) entities, relations, "
                                                               "classify and extract")
    description: str
    state: Literal["device", "host", "cold"] = Field(
        description="device: resident and fast; host: parked in RAM; cold: loads on first use")
    availability: Availability = Field(
        description="bundled: shipped in an installed package; local: a directory on this server; cached: in "
                    "the Hugging Face cache; downloadable: fetched from the Hub on first use (seconds to "
                    "minutes); unavailable: not here and cannot be fetched (offline, or a missing "
                    "package or directory): calls naming it fail")
    note: str = Field("", description="Why a model is unavailable, and what would make it available")
    pinned: bool
    default_for: list[str] = Field(description="Tools that use this model when none is named")


class ModelsResult(ToolResult):
    models: list[ModelCard]


class IndexResult(ToolResult):
    collection: str
    model: str = Field(description="The embedding model of this collection (search uses it for queries)")
    documents: int = Field(description="Documents indexed by this call (a document whose id existed was replaced)")
    chunks: int = Field(description="Chunks they were split into (long documents are cut at ~800 characters)")
    ids: list[str] = Field(description="The documents' ids, in request order (generated from the text when "
                                       "not given)")
    collection_chunks: int = Field(description="Chunks in the collection now")


class SearchHit(BaseModel):
    id: str = Field(description="The document's id")
    chunk: int = Field(description="Which chunk of the document (0 = its start)")
    score: Score = Field(description="Cosine similarity to the query, or the reranker's score when reranked")
    text: str = Field(description="The chunk's first ~160 characters ('…' when cut), or all of it with "
                                  "return_text=true")
    start: int = Field(description="Character offset of the chunk in the document")
    end: int = Field(description="One past the chunk's last character")
    metadata: dict[str, str | int | float | bool] = Field(description="The document's metadata")


class SearchResult(ToolResult):
    collection: str
    model: str = Field(description="Embedding model of the collection")
    method: str = Field(description="vector (nearest chunks), or vector+<rerank method> when a second stage "
                                    "re-scored the candidates")
    results: list[SearchHit] = Field(description="Best first")


class CollectionCard(BaseModel):
    name: str
    model: str
    dimensions: int
    chunks: int


class CollectionsResult(ToolResult):
    collections: list[CollectionCard]


class DeleteResult(ToolResult):
    collection: str
    deleted_chunks: int
