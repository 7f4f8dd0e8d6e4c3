"""Engine metrics: one registry object, owned by the engine, exported on /metrics by the server.

The metric names are a contract (the Helm chart's KEDA ScaledObject and dashboards read them); they are
listed in the README. `sie_tool_queue_depth{model="_all"}` is the autoscaling signal.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ALL_MODELS = "_all"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_TOKEN_BUCKETS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("sie_tool_queue_depth",
                                 "Tool calls admitted and not finished (queued or computing; a chunked call counts once), "
                                 "by model; model=\"_all\" is the total",
                                 ["model"], registry=r)
        self.batch_size = Histogram("sie_batch_size", "Sequences per forward batch", ["model"],
                                    buckets=_SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("sie_batch_tokens", "Real tokens per forward batch", ["model"],
                                      buckets=_TOKEN_BUCKETS, registry=r)
        self.phase_seconds = Histogram("sie_request_phase_seconds",
                                       "Latency by phase: queue (wait for a batch), tokenize, compute, heap_trim",
                                       ["model", "phase"], buckets=_LATENCY_BUCKETS, registry=r)
        self.loads = Counter("sie_model_loads_total", "Model loads, by source tier (disk or host)",
                             ["model", "source"], registry=r)
        self.evictions = Counter("sie_model_evictions_total", "Model evictions, by destination (host or dropped)",
                                 ["model", "to"], registry=r)
        self.swap_in_seconds = Histogram("sie_model_swap_in_seconds", "Time to make a model resident",
                                         ["model", "source"], buckets=_LATENCY_BUCKETS, registry=r)
        self.resident_bytes = Gauge("sie_model_resident_bytes", "Bytes held by a model, by device (or host tier)",
                                    ["model", "device"], registry=r)
        self.errors = Counter("sie_errors_total", "Errors by type", ["type"], registry=r)
        self.queue_depth.labels(model=ALL_MODELS).set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
