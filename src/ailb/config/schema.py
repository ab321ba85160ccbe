"""The validated configuration: frozen dataclasses, built once by ``load_settings`` and passed down.

A field's default here is the one definition of that default: the environment table and the config file only
say where a value may come from and how it is checked (``config/env.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from ailb.governance.periods import DEFAULT_PERIOD, BudgetPeriod
from ailb.observability.tracing_config import TracingConfig
from ailb.providers.kinds import ProviderKind, provider_kind
from ailb.redaction import mask_secret, redact_url

# The embedded stores' default places, inside the data folder (``AILB_DATA_DIR``, default the current folder).
MEMORY_FOLDER = "ailb_memory"
RAG_FOLDER = "ailb_rag"
SPEND_FILE = "ailb_spend.sqlite3"  # beside the memory folder


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_token: float = 60.0
    idle: float = 30.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    name: str
    provider: str  # a registered kind's name (providers/kinds.py)
    base_url: str
    api_key: str = field(default="", repr=False)
    models: tuple[str, ...] = ()
    embedding_models: tuple[str, ...] = ()  # served on /v1/embeddings only (and never for chat)
    weight: float = 1.0
    priority: int = 0
    version: str = ""
    input_cost_per_1k: float | None = None
    output_cost_per_1k: float | None = None
    cache_read_cost_per_1k: float | None = None
    cache_write_cost_per_1k: float | None = None
    timeouts: Timeouts = Timeouts()
    max_concurrency: int | None = None
    default_max_tokens: int = 4096
    max_output_tokens: int | None = None  # None: the built-in figure for each model (routing/output_caps.py)

    @property
    def kind(self) -> ProviderKind:
        return provider_kind(self.provider)

    def redacted(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "base_url": redact_url(self.base_url),
            "api_key": mask_secret(self.api_key),
            "models": list(self.models),
            "embedding_models": list(self.embedding_models),
            "weight": self.weight,
            "priority": self.priority,
            "version": self.version,
            "input_cost_per_1k": self.input_cost_per_1k,
            "output_cost_per_1k": self.output_cost_per_1k,
            "cache_read_cost_per_1k": self.cache_read_cost_per_1k,
            "cache_write_cost_per_1k": self.cache_write_cost_per_1k,
            "timeouts": {f.name: getattr(self.timeouts, f.name) for f in fields(Timeouts)},
            "max_concurrency": self.max_concurrency,
            "max_output_tokens": self.max_output_tokens,
        }


@dataclass(frozen=True, slots=True)
class RouterConfig:
    max_attempts: int = 3
    deadline: float = 600.0
    retry_budget_ratio: float = 0.2
    retry_budget_min_per_s: float = 10.0
    backoff_base: float = 0.1
    backoff_cap: float = 5.0
    failure_threshold: int = 3
    failure_ratio: float = 0.5
    failure_ratio_min_requests: int = 20
    cooldown: float = 5.0
    cooldown_cap: float = 300.0
    health_check_interval: float = 30.0


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    enabled: bool = True
    backend: str = "chromadb"
    path: str = f"./{MEMORY_FOLDER}"
    ttl_days: float | None = None
    recent_turns: int = 4
    top_k: int = 4
    max_tokens: int = 2000
    similarity_threshold: float = 0.3
    query_tokens: int = 32  # recall matches a new message by its first 32 tokens
    queue_size: int = 10000


@dataclass(frozen=True, slots=True)
class RagConfig:
    enabled: bool = False
    backend: str = "chromadb"
    path: str = f"./{RAG_FOLDER}"
    default_top_k: int = 3
    min_score: float = 0.2
    chunk_tokens: int = 200
    chunk_overlap: int = 40


@dataclass(frozen=True, slots=True)
class ClientKeyConfig:
    """One ``client_keys:`` entry. ``None`` means "no limit" (for ``models``/``collections``: all)."""

    key: str = field(repr=False)
    name: str | None = None  # shown instead of the key; without one, the key's tenant id (a hash) is shown
    models: frozenset[str] | None = None
    collections: frozenset[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_budget_usd: float | None = None
    budget_period: BudgetPeriod = DEFAULT_PERIOD

    @property
    def metered(self) -> bool:
        """Whether requests with this key are counted against limits (and its spend tracked)."""
        return self.rpm is not None or self.tpm is not None or self.max_budget_usd is not None


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What the HTTP server accepts from a connection (enforced in http/protocol.py)."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    max_connections: int = 4096


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    http_port: int = 8080
    grpc_port: int = 50051
    enable_grpc: bool = True
    module_id: str = "ailb-1"
    routing_strategy: str = "load_balanced"
    deployments: tuple[DeploymentConfig, ...] = ()
    model_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    client_keys: tuple[ClientKeyConfig, ...] = field(default=(), repr=False)
    admin_token: str = field(default="", repr=False)
    metrics_token: str = field(default="", repr=False)
    http: HttpLimits = HttpLimits()
    max_request_bytes: int = 32 * 1024 * 1024
    drain_timeout: float = 30.0
    log_level: str = "info"
    log_format: str = "text"  # "json": one JSON object per line
    tracing: TracingConfig = field(default_factory=TracingConfig)  # the OTEL_* variables: an endpoint turns it on
    chroma_host: str = ""
    chroma_port: int = 8000
    embedding_backend: str = "local"
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_runtime: str = "onnx"
    embedding_deployment: str = ""
    local_embeddings: bool = True  # the packaged all-MiniLM-L6-v2 on /v1/embeddings
    router: RouterConfig = RouterConfig()
    memory: MemoryConfig = MemoryConfig()
    rag: RagConfig = RagConfig()
    config_path: str = ""
    spend_path: str = ""  # the SQLite file that keeps per-key spend across restarts; "" keeps it in memory only
    data_dir: str = "."
    # Provider env vars (e.g. OPENAI_API_KEY) that are set but unused because the config file lists the
    # deployments and does not refer to them: the start-up log warns about each.
    unused_provider_env: tuple[str, ...] = ()
    redis_url: str = field(default="", repr=False)  # shared state for a fleet; "" keeps it in this process
    expected_instances: int = 1  # what limits are divided by while Redis is down
    workers: int = 1  # processes serving the same ports (``ailb serve --workers``)

    def deployment(self, name: str) -> DeploymentConfig | None:
        return next((d for d in self.deployments if d.name == name), None)

    @property
    def key_collections(self) -> dict[str, frozenset[str]]:
        """Client key → the knowledge-base collections it is limited to (keys without a limit are absent)."""
        return {k.key: k.collections for k in self.client_keys if k.collections is not None}


# The nested groups of ``Settings``: a setting's path is ``<group>.<field>`` or a top-level field name.
GROUPS: Mapping[str, type] = {"http": HttpLimits, "router": RouterConfig, "memory": MemoryConfig, "rag": RagConfig}


def field_default(cls: Any, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls``."""
    found = next(f for f in fields(cls) if f.name == name)
    if found.default is not MISSING:
        return found.default
    return found.default_factory() if found.default_factory is not MISSING else None
