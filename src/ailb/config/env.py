"""The environment variables: one table of (name, path into ``Settings``, type with its range or choices).

Adding a setting is one line here (plus its field, with its default, in ``schema.py``, and a line in the
README). A variable marked ``file`` may also be written in the config file's ``settings:`` section under its
path (``memory.top_k`` is ``settings: {memory: {top_k: …}}``) and is checked the same way; the file wins.
Secrets and the config file's own location are environment-only. The provider variables (``OPENAI_API_KEY`` …)
come from the provider kinds' records (``providers/kinds.py``), under ``providers.<kind>.<field>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ailb.config.schema import GROUPS, DeploymentConfig, Settings, field_default
from ailb.config.values import (
    Choice,
    Flag,
    Integer,
    KeySet,
    Names,
    Number,
    PathOrNone,
    RedisUrl,
    Text,
    Url,
    ValueType,
)
from ailb.providers.kinds import ProviderKind, provider_kinds

PROVIDERS = "providers."  # the path prefix of the provider variables
_SCHEMA = object()  # "the default is the schema's": see ``default_of``
TEXT, FLAG, FOLDER, SECRET = Text(), Flag(), Text("folder"), Text("secret")
PORT = Integer(0, 65535)
SECONDS = Number(0.1, 3600)
UNIT = Number(-1, 1)  # a cosine similarity


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    path: str
    type: ValueType
    file: bool = True  # also settable in the config file's ``settings:`` section
    default: object = _SCHEMA


SETTINGS_VARS: tuple[Var, ...] = (
    Var("HOST", "host", Text("address")),
    Var("HTTP_PORT", "http_port", PORT),
    Var("GRPC_PORT", "grpc_port", PORT),
    Var("ENABLE_GRPC", "enable_grpc", FLAG),
    Var("MODULE_ID", "module_id", Text("name")),
    Var("ROUTING_STRATEGY", "routing_strategy", Text("a strategy (see Routing)")),  # checked by bootstrap
    Var("AILB_CONFIG", "config_path", Text("file path"), file=False),
    Var("AILB_DATA_DIR", "data_dir", FOLDER),
    Var("AILB_API_KEYS", "api_keys", KeySet(), file=False),
    Var("SPEND_PATH", "spend_path", PathOrNone()),
    Var("AILB_ADMIN_TOKEN", "admin_token", SECRET, file=False),
    Var("METRICS_TOKEN", "metrics_token", SECRET, file=False),
    Var("MAX_REQUEST_BYTES", "max_request_bytes", Integer(1024, 2**31)),
    Var("DRAIN_TIMEOUT", "drain_timeout", Number(0, 3600)),
    Var("LOG_LEVEL", "log_level", Choice(("debug", "info", "warning", "error"))),
    Var("LOG_FORMAT", "log_format", Choice(("text", "json"))),
    Var("MAX_HEADER_BYTES", "http.max_header_bytes", Integer(1024, 16 * 1024 * 1024)),
    Var("MAX_HEADERS", "http.max_headers", Integer(8, 10_000)),
    Var("HEADER_TIMEOUT", "http.header_timeout", SECONDS),
    Var("BODY_TIMEOUT", "http.body_timeout", SECONDS),
    Var("KEEPALIVE_TIMEOUT", "http.keepalive_timeout", SECONDS),
    Var("MAX_CONNECTIONS", "http.max_connections", Integer(1, 1_000_000)),
    Var("ROUTER_MAX_ATTEMPTS", "router.max_attempts", Integer(1, 20)),
    Var("ROUTER_DEADLINE", "router.deadline", Number(0.1, 86400)),
    Var("ROUTER_RETRY_BUDGET", "router.retry_budget_ratio", Number(0, 10)),
    Var("ROUTER_RETRY_BUDGET_MIN", "router.retry_budget_min_per_s", Number(0, 1_000_000)),
    Var("ROUTER_BACKOFF_BASE", "router.backoff_base", Number(0, 60)),
    Var("ROUTER_BACKOFF_MAX", "router.backoff_cap", Number(0, 3600)),
    Var("CIRCUIT_FAILURE_THRESHOLD", "router.failure_threshold", Integer(1, 1000)),
    Var("CIRCUIT_FAILURE_RATIO", "router.failure_ratio", Number(0.01, 1)),
    Var("CIRCUIT_FAILURE_RATIO_MIN_REQUESTS", "router.failure_ratio_min_requests", Integer(1, 1000)),
    Var("CIRCUIT_COOLDOWN", "router.cooldown", Number(0.01, 3600)),
    Var("CIRCUIT_COOLDOWN_MAX", "router.cooldown_cap", Number(0.01, 86400)),
    Var("HEALTH_CHECK_INTERVAL", "router.health_check_interval", Number(0, 86400)),
    Var("ENABLE_MEMORY", "memory.enabled", FLAG),
    Var("MEMORY_BACKEND", "memory.backend", Choice(("chromadb",))),
    Var("MEMORY_PATH", "memory.path", FOLDER),
    Var("MEMORY_TTL_DAYS", "memory.ttl_days", Number(0.001, 36500)),
    Var("MEMORY_RECENT_TURNS", "memory.recent_turns", Integer(0, 100)),
    Var("MEMORY_TOP_K", "memory.top_k", Integer(0, 100)),
    Var("MEMORY_MAX_TOKENS", "memory.max_tokens", Integer(1, 1_000_000)),
    Var("MEMORY_SIMILARITY_THRESHOLD", "memory.similarity_threshold", UNIT),
    Var("MEMORY_QUERY_TOKENS", "memory.query_tokens", Integer(1, 1_000_000)),
    Var("MEMORY_QUEUE_SIZE", "memory.queue_size", Integer(1, 10_000_000)),
    Var("CHROMA_HOST", "chroma_host", Text("host name or address")),
    Var("CHROMA_PORT", "chroma_port", Integer(1, 65535)),
    Var("EMBEDDING_BACKEND", "embedding_backend", Choice(("local", "provider"))),
    Var("EMBEDDING_MODEL", "embedding_model", Text("model name or folder")),
    Var("EMBEDDING_RUNTIME", "embedding_runtime", Choice(("onnx", "torch"))),
    Var("EMBEDDING_DEPLOYMENT", "embedding_deployment", Text("deployment name")),
    Var("ENABLE_LOCAL_EMBEDDINGS", "local_embeddings", FLAG),
    Var("ENABLE_RAG", "rag.enabled", FLAG),
    Var("RAG_BACKEND", "rag.backend", Choice(("chromadb",))),
    Var("RAG_PATH", "rag.path", FOLDER),
    Var("RAG_TOP_K", "rag.default_top_k", Integer(1, 50)),
    Var("RAG_MIN_SCORE", "rag.min_score", UNIT),
    Var("RAG_CHUNK_TOKENS", "rag.chunk_tokens", Integer(8, 100_000)),
    Var("RAG_CHUNK_OVERLAP", "rag.chunk_overlap", Integer(0, 100_000)),
    Var("REDIS_URL", "redis_url", RedisUrl(), file=False),  # may hold a password
    Var("EXPECTED_INSTANCES", "expected_instances", Integer(1, 10_000)),
    Var("WORKERS", "workers", Integer(1, 256)),
)


def provider_vars(kind: ProviderKind) -> tuple[Var, ...]:
    """The variables that configure ``kind``'s env-configured deployment (named after the kind)."""
    where = f"{PROVIDERS}{kind.name}."
    found = [
        Var(kind.env.base_url, where + "base_url", Url(), file=False, default=kind.default_base_url),
        Var(kind.env.models, where + "models", Names(), file=False, default=kind.default_models),
    ]
    if kind.env.api_key:
        found.insert(0, Var(kind.env.api_key, where + "api_key", SECRET, file=False, default=""))
    if kind.env.max_tokens:
        default = field_default(DeploymentConfig, "default_max_tokens")
        found.append(Var(kind.env.max_tokens, where + "default_max_tokens", Integer(1, 1_000_000), False, default))
    if kind.env.embedding_models:
        embeddings, default = Names(none_word="none"), kind.default_embedding_models
        found.append(Var(kind.env.embedding_models, where + "embedding_models", embeddings, False, default))
    return tuple(found)


VARS: tuple[Var, ...] = (*(v for kind in provider_kinds() for v in provider_vars(kind)), *SETTINGS_VARS)
FILE_VARS: Mapping[str, Var] = {v.path: v for v in VARS if v.file}


def read_env(env: Mapping[str, str]) -> dict[str, object]:
    """Every variable of the table that is set (an empty one is not): its path → its typed value."""
    return {var.path: var.type.parse(env[var.name], var.name) for var in VARS if env.get(var.name, "").strip()}


def default_of(var: Var) -> object:
    """What a variable's setting is when neither the environment nor the file gives it."""
    if var.default is not _SCHEMA:
        return var.default
    group, _, name = var.path.rpartition(".")
    return field_default(GROUPS[group] if group else Settings, name)
