"""What a loaded model computes: the closed vocabulary of tasks."""

from __future__ import annotations

from enum import Enum


class Task(str, Enum):
    """What a loaded model computes."""

    EMBED = "embed"
    """One vector per input (pooling head)."""
    SEQUENCE_CLASSIFICATION = "sequence_classification"
    """Logits per input or input pair (cross-encoder relevance, NLI, classifiers)."""
    TOKEN_CLASSIFICATION = "token_classification"
    """Logits per token (NER)."""
    SPARSE_EMBED = "sparse_embed"
    """A SPLADE vector over the vocabulary per input (masked-LM head, log1p(relu), max over tokens)."""
    MULTI_VECTOR = "multi_vector"
    """L2-normalised ColBERT vectors per token, compared by MaxSim."""
    PARSE = "parse"
    """A linguistic pipeline (spaCy): entities, sentences, dependencies, noun chunks per text (engine.parse)."""
    ZERO_SHOT_NER = "zero_shot_ner"
    """Entity spans for labels given per request (GLiNER)."""
    SCHEMA_EXTRACTION = "schema_extraction"
    """Entities, relations, classification and structures for a schema given per request (GLiNER2)."""
