"""The engine's error hierarchy.

Every failure the engine reports is one of these, and `EngineError` is the root the other layers' errors
derive from (graphs: ontology/errors.py; collections: tools/errors.py), each defined beside its owner.
Boundaries (MCP, HTTP) map them once to a tool error or an HTTP status (sie_mcp/errors.py); messages are
written so that an agent or operator can act on them.
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


class ModelLoadError(EngineError):
    """A model cannot be made resident: weights, config or tokenizer files missing or corrupt, or the server's
    configuration of it cannot work. The operator must fix it; the caller can only pick another model."""


class ModelConfigError(ModelLoadError):
    """The operator's settings for a model cannot work here (fp16 on CPU, a max_length past the model's
    positions, a pair template on a model that does not score pairs)."""


class UnsupportedArchitecture(ModelLoadError):
    """A checkpoint's architecture (or a config field) is not implemented by our forward passes."""


class UnsupportedTask(EngineError):
    """The model has no head for the requested task (e.g. NER on an embedding model)."""


class ComputeError(EngineError):
    """A batch failed on the server's side (a model or engine fault, not the caller's input)."""


class BackendUnavailable(ModelLoadError):
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


class ServerMisconfigured(EngineError):
    """The server's own settings cannot work (a malformed --model, catalog or taxonomy file), found after start
    (stdio builds the engine behind `initialize`): every call fails until the operator fixes them."""


class ModelOutputError(ComputeError):
    """The model produced no valid answer (NaN or infinite outputs): a fault of the model, not the input."""
