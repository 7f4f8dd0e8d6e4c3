"""The engine's error hierarchy.

Every failure the engine reports is one of these. Boundaries (MCP, HTTP) map them once to a tool error
or an HTTP status; messages are written so that an agent or operator can act on them.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class for every error the engine raises on purpose."""


class InvalidInput(EngineError):
    """The caller sent something the engine cannot compute on (empty list, non-string, …)."""


class InputTooLong(InvalidInput):
    """An input exceeds a hard limit (used where truncation is not allowed)."""


class UnknownModel(EngineError):
    """The requested model is not in the catalog or registry."""


class UnsupportedArchitecture(EngineError):
    """A checkpoint's architecture (or a config field) is not implemented by our forward passes."""


class ModelLoadError(EngineError):
    """Weights, config or tokenizer files are missing or corrupt."""


class UnsupportedTask(EngineError):
    """The model has no head for the requested task (e.g. NER on an embedding model)."""


class BackendUnavailable(EngineError):
    """A requested attention backend cannot run on this device/config."""


class Overloaded(EngineError):
    """Admission control rejected the work; the caller should retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RequestTimeout(EngineError):
    """The work did not finish within the request's deadline."""


class ShuttingDown(EngineError):
    """The engine is draining and accepts no new work."""


class ModelOutputError(EngineError):
    """The model produced no valid answer (NaN or infinite outputs): a fault of the model, not the input."""
