"""One settings object: every option is a CLI flag and an SIE_* environment variable.

Precedence: command-line flag > environment variable > default. The engine receives dataclasses built
from this (PoolConfig, SchedulerConfig, Limits, Defaults), never this object.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # imported where used: `sie-tools --help` must not wait for torch
    from engine.pool import PoolConfig
    from engine.scheduler import SchedulerConfig
    from ontology.store import GraphStore
    from tools.context import Defaults, Limits
    from tools.vector_store import VectorStore

# Declared here, not in the modules that use them: settings are read before the MCP SDK is imported.
ResponseMode = Literal["auto", "sse", "json"]
FastPath = Literal["on", "off"]  # sie_mcp/mcp_single_call.py

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "kib": 2**10,
          "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(value: str | None) -> int | None:
    """'2GiB', '512MB', '1000000' -> bytes; None or '' -> None (the default budget)."""
    if value is None or str(value).strip() == "":
        return None
    m = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a byte size: {value!r} (examples: 2GiB, 512MB, 1000000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache) if cache else Path.home() / ".cache") / "sie-mcp"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIE_", extra="forbid")

    transport: Literal["stdio", "http"] = Field("stdio", description="MCP transport: stdio, or http (also serves "
                                                                     "the HTTP API, /metrics and health checks)")
    host: str = Field("127.0.0.1", description="HTTP bind address (use 0.0.0.0 in a container)")
    port: int = Field(8080, description="HTTP port")
    stateless_http: bool = Field(False, description="Stateless MCP over HTTP (any replica can serve any request)")
    mcp_response: ResponseMode = Field(
        "auto", description="How MCP over HTTP answers a POST: sse (a stream), json (one body, no progress "
                            "notifications), auto (stateless mode: json unless the call asks for progress; "
                            "sessions: sse)")
    catalog: Path | None = Field(None, description="Catalog YAML (default: the bundled catalog)")
    model: list[str] = Field(default_factory=list, description="Register a local model dir: NAME=PATH (repeatable)")
    preload: list[str] = Field(default_factory=list, description="Models to load at start-up (default: the "
                                                                 "default embedding model)")
    device: str = Field("auto", description="auto (cuda if available, else cpu), cpu, cuda, cuda:N")
    dtype: str = Field("auto", description="auto, float32, bfloat16, float16 (CUDA)")
    attention_backend: str | None = Field(None, description="Force an attention backend (default: best available)")
    memory_budget: str | None = Field(None, description="Device memory for resident models, e.g. 4GiB (default: "
                                                        "60% of GPU memory, or 30% of RAM on CPU)")
    host_memory_budget: str | None = Field(None, description="Host RAM for models evicted from the device "
                                                             "(default: 20% of RAM; 0 drops them instead)")
    max_batch_tokens: int | None = Field(None, description="Token budget per forward batch (default: 8192 on CPU, "
                                                           "32768 on CUDA)")
    max_wait_ms: float = Field(20.0, description="The longest a batch waits to fill up under load (none when idle; see docs/benchmarks.md)")
    max_queue: int = Field(256, description="Pending requests before calls fail with 'overloaded, retry'")
    request_timeout_s: float = Field(60.0, description="Per-request timeout")
    drain_timeout_s: float | None = Field(None, description="On SIGTERM: how long accepted calls may take to "
                                                            "finish before the server exits (/readyz is 503 "
                                                            "from the signal on); more than the request "
                                                            "timeout (default: request timeout + 10 s)")
    default_embed_model: str = Field("all-MiniLM-L6-v2", description="Model for embed (and the fallbacks)")
    default_rerank_model: str | None = Field(None, description="Model for rerank (default: the embed model, by "
                                                               "cosine)")
    default_ner_model: str = Field("en_core_web_sm", description="Model for extract_entities (spaCy, bundled)")
    default_classify_model: str | None = Field(None, description="Model for classify (default: the embed model)")
    taxonomy: list[str] = Field(default_factory=list, description="Register a taxonomy file for classify: NAME=PATH "
                                                                  "(.txt: one 'A > B > C' per line, or .json; "
                                                                  "repeatable)")
    tools: str = Field("", description="The tools to expose on MCP and HTTP, comma-separated: tool names and "
                                       "groups (text, retrieval, graphs, all); default: every tool")
    max_texts: int = Field(512, description="Texts per call")
    max_chars: int = Field(100_000, description="Characters per text")
    max_documents: int = Field(1000, description="Documents per rerank call")
    max_labels: int = Field(2000, description="Labels or taxonomy categories per classify call")
    max_taxonomy_depth: int = Field(16, description="Levels of a classify taxonomy")
    max_category_chars: int = Field(1000, description="Characters of one taxonomy path or category name")
    max_body_bytes: int = Field(16 * 2**20, description="HTTP request body limit in bytes")
    log_level: str = Field("info", description="debug, info, warning, error")
    data_dir: Path = Field(default_factory=lambda: default_data_dir(),
                           description="Where state lives (a volume in a container): collections under collections/, "
                                       "knowledge graphs under graphs/ (default: $XDG_CACHE_HOME/sie-mcp, else "
                                       "~/.cache/sie-mcp)")
    graph_store: str | None = Field(None, description="Where knowledge graphs live: a PostgreSQL URL "
                                                      "(postgresql://user:pass@host:5432/db) shared by every replica, "
                                                      "or none for SQLite in <data_dir>/graphs (one file, WAL)")
    max_graphs: int = Field(100, description="Graphs kept in the graph store; the least recently written go first")
    max_graph_bytes: str = Field("1GiB", description="Total size of the stored graphs, e.g. 512MiB")
    graph_ttl_s: float = Field(30 * 86400, description="Seconds a graph is kept after its last write")
    vector_db_url: str | None = Field(None, description="A Chroma server (http://host:8000) that holds the "
                                                        "collections, shared by every replica (default: an "
                                                        "embedded Chroma under <data_dir>/collections)")
    max_collections: int = Field(100, description="Collections the store may hold")
    max_collection_chunks: int = Field(200_000, description="Chunks per collection")
    # --- who may call (sie_mcp/http_guard.py, docs/reliability.md) ---
    auth_token_file: Path | None = Field(None, description="File of bearer tokens, one per line, accepted on every "
                                                           "HTTP route but /healthz and /readyz")
    auth_tokens: list[SecretStr] = Field(default_factory=list, description="Bearer tokens as a JSON list (environment "
                                                                           "only: never on a command line)")
    no_auth: bool = Field(False, description="Serve off loopback without authentication (refused otherwise): "
                                             "only behind something that authenticates for you")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host names (or host:port) accepted besides "
                                                                       "the loopback ones; '*' accepts any (repeatable "
                                                                       "flag; JSON list in the environment)")
    allowed_origins: list[str] = Field(default_factory=list, description="Browser origins (scheme://host[:port]) "
                                                                         "accepted besides loopback ones; also "
                                                                         "enables CORS for them")
    metrics_auth: bool = Field(False, description="Require the bearer token on /metrics too")
    read_timeout_s: float = Field(30.0, description="Time a client may take to send its request body")
    # --- per-client limits (sie_mcp/client_limits.py): a client is its bearer token, else its IP address ---
    max_client_calls: int = Field(0, ge=0, description="Tool calls (REST or MCP POSTs) one client may have in "
                                                       "flight; more get 429 + Retry-After (0: no limit)")
    max_client_sessions: int = Field(64, ge=0, description="Open MCP sessions per client; more get 429 + "
                                                           "Retry-After (0: no limit)")
    max_sessions: int = Field(1000, ge=1, description="Open MCP sessions in all; more get 503")
    mcp_session_idle_s: float = Field(1800.0, gt=0, description="An MCP session with no request in flight for "
                                                                "this long is ended")
    mcp_fast_path: FastPath = Field("on", description="Stateless JSON tools/call POSTs: on (sie-mcp's direct path, "
                                                      "sie_mcp/mcp_single_call.py), off (the SDK's own path). Used "
                                                      "only with the MCP SDK version it was verified against")
    malloc_arena_max: int = Field(2, description="glibc malloc arenas (bounds RSS growth under many threads; 0 "
                                                 "leaves glibc's default of 8 per core)")
    heap_trim_s: float = Field(1.0, ge=0, description="Return freed heap pages to the system at most this often, "
                                                      "between batches (glibc malloc_trim; 0: never)")
    kernel_cache_entries: int = Field(64, ge=0, description="Entries in each of oneDNN's shape-keyed kernel caches "
                                      "(LRU_CACHE_CAPACITY, ONEDNN_PRIMITIVE_CACHE_CAPACITY; 0: the libraries' "
                                      "1024, whose filling grows RSS by hundreds of MB under varying batches)")
    gc_freeze: bool = Field(True, description="After each model load, collect once and exclude the surviving "
                                              "objects from later garbage collections (gc.freeze): keeps "
                                              "collector pauses in milliseconds instead of ~0.2 s")

    @model_validator(mode="after")
    def _drain_outlasts_requests(self) -> Settings:
        # An accepted call ends within the request timeout (answered or timed out): a longer drain loses none.
        if self.drain_timeout_s is not None and self.drain_timeout_s <= self.request_timeout_s:
            raise ValueError(f"drain_timeout_s ({self.drain_timeout_s:g}) must exceed request_timeout_s "
                             f"({self.request_timeout_s:g}), or calls accepted before a SIGTERM could be cut off")
        return self

    def drain_timeout(self) -> float:
        return self.drain_timeout_s if self.drain_timeout_s is not None else self.request_timeout_s + 10.0

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def pool_config(self) -> PoolConfig:
        from engine.pool import PoolConfig

        return PoolConfig(device=self.resolved_device(), budget_bytes=parse_bytes(self.memory_budget),
                          host_budget_bytes=parse_bytes(self.host_memory_budget), default_dtype=self.dtype,
                          attention_backend=self.attention_backend, freeze_objects=self.gc_freeze)

    def scheduler_config(self) -> SchedulerConfig:
        from engine.scheduler import SchedulerConfig

        return SchedulerConfig(max_batch_tokens=self.max_batch_tokens, max_wait_s=self.max_wait_ms / 1e3,
                               max_queue=self.max_queue, request_timeout_s=self.request_timeout_s,
                               heap_trim_interval_s=self.heap_trim_s)

    def limits(self) -> Limits:
        from tools.context import Limits

        return Limits(max_texts=self.max_texts, max_chars=self.max_chars, max_documents=self.max_documents,
                      max_labels=self.max_labels, max_taxonomy_depth=self.max_taxonomy_depth,
                      max_category_chars=self.max_category_chars)

    def vector_store(self) -> VectorStore:
        from tools.vector_store import VectorStore

        return VectorStore(self.data_dir / "collections", self.vector_db_url, max_chunks=self.max_collection_chunks,
                           max_collections=self.max_collections)

    def defaults(self) -> Defaults:
        from tools.context import Defaults

        return Defaults(embed_model=self.default_embed_model, rerank_model=self.default_rerank_model,
                        ner_model=self.default_ner_model, classify_model=self.default_classify_model)

    def open_graph_store(self) -> GraphStore:
        from ontology.store import GraphStore

        return GraphStore(self.graph_store or self.data_dir / "graphs", max_graphs=self.max_graphs,
                          max_bytes=parse_bytes(self.max_graph_bytes) or 1 << 30, ttl_s=self.graph_ttl_s)
