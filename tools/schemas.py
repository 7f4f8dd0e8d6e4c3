"""Typed results of every tool (structured output for MCP, response bodies for HTTP)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.wire import Float32Rows, Float32Vector


class SparseEmbedding(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    token_ids: list[int] = Field(description="Vocabulary ids of the heaviest terms, highest weight first")
    weights: Float32Vector
    tokens: list[str] = Field(description="The terms themselves (readable: what the text is 'about')")


class EmbedResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = Field(description="Catalog id of the model that produced the vectors")
    representation: Literal["dense", "sparse", "multi_vector"] = Field(
        description="dense: `embeddings`; sparse (SPLADE): `sparse_embeddings`, compare by dot product over "
                    "shared terms; multi_vector (ColBERT): `multi_vector_embeddings`, one vector per token, "
                    "compare with MaxSim")
    dimensions: int = Field(description="Length of each vector (vocabulary size for sparse)")
    normalized: bool = Field(description="Whether vectors are L2-normalised (dot product = cosine)")
    embeddings: Float32Rows = Field(description="Dense: one vector per input text, in input order")
    sparse_embeddings: list[SparseEmbedding] | None = Field(None, description="Sparse: one per input text")
    multi_vector_embeddings: list[Float32Rows] | None = Field(
        None, description="Multi-vector: per input text, one vector per token")
    token_counts: list[int] = Field(description="Tokens per input after truncation")
    truncated: list[bool] = Field(description="True where an input was longer than the model's max length")


class RankedDocument(BaseModel):
    index: int = Field(description="Position of the document in the request")
    score: float = Field(description="Relevance: cross-encoder probability, cosine similarity, MaxSim or "
                                     "sparse dot product (see `method`)")
    document: str


class RerankResult(BaseModel):
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
    score: float = Field(description="token-classification: mean probability of the entity's tokens (or words); "
                                     "spacy: always 1.0 (its parser makes decisions, not probabilities); "
                                     "zero-shot: the span's probability")
    start: int = Field(description="Character offset where the entity starts")
    end: int = Field(description="Character offset one past its end")


class EntitiesResult(BaseModel):
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
    score: float = Field(description="Higher is better: cosine similarity (embedding), or a probability "
                                     "(classifier, NLI, re-scoring model); 4 decimals")


class ClassifyResult(BaseModel):
    model: str
    method: Literal["embedding-similarity", "sequence-classifier", "nli-zero-shot", "cross-encoder-rescored"]
    search: Literal["flat", "beam"] | None = Field(
        default=None, description="Taxonomies: flat = every leaf scored at once; beam = walked level by level")
    results: list[list[LabelScore]] = Field(description="Per input text, best first, at most top_k")
    confidence: list[float] = Field(
        default_factory=list, description="Per input text: best score minus the runner-up's. Near 0 means the "
                                          "top two are a toss-up (show both, or ask); large means a clear winner")


class ModelCard(BaseModel):
    id: str
    hf_id: str | None
    task: str = Field(description="embed | rerank | ner | classify | sparse | multi_vector")
    description: str
    state: Literal["device", "host", "cold"] = Field(
        description="device: resident and fast; host: parked in RAM; cold: loads on first use")
    pinned: bool
    default_for: list[str] = Field(description="Tools that use this model when none is named")


class ModelsResult(BaseModel):
    models: list[ModelCard]
