"""Configuration: the original AILB environment variables plus an optional YAML file.

Parsed once into a frozen ``Settings``; every bad key or value is a ``ConfigError`` naming that key.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from ailb.governance.periods import DEFAULT_PERIOD, BudgetPeriod, parse_period
from ailb.observability.tracing_config import TracingConfig, TracingSettingError, read_tracing_config

PROVIDER_KINDS = ("openai", "anthropic", "ollama")
DEFAULT_PRIORITY = {"openai": 0, "anthropic": 1, "ollama": 2}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """A configuration key has a bad value. ``key`` names it (env var or YAML path)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_token: float = 60.0
    idle: float = 30.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    name: str
    provider: str
    base_url: str
    api_key: str = field(default="", repr=False)
    models: tuple[str, ...] = ()
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

    def redacted(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "base_url": redact_url(self.base_url),
            "api_key": redact(self.api_key),
            "models": list(self.models),
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
    path: str = "./ailb_memory"
    ttl_days: float | None = None
    recent_turns: int = 4
    top_k: int = 4
    max_tokens: int = 2000
    similarity_threshold: float = 0.3
    queue_size: int = 10000


@dataclass(frozen=True, slots=True)
class RagConfig:
    enabled: bool = False
    backend: str = "chromadb"
    path: str = "./ailb_rag"
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


def redact(secret: str) -> str:
    if not secret:
        return ""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def redact_url(url: str) -> str:
    """``url`` without credentials a user may have put in it (``user:pass@``, the query string)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"****@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, "****" if parts.query else "", ""))


def load_settings(env: Mapping[str, str] | None = None, config_path: str | None = None) -> Settings:
    """Build ``Settings`` from ``env`` (default ``os.environ``) and the YAML file it names, if any."""
    env = dict(os.environ if env is None else env)
    reader = _EnvReader(env)
    path = config_path or env.get("AILB_CONFIG", "")
    file_data = _read_yaml(path) if path else {}
    _check_known(file_data, {"deployments", "model_aliases", "settings", "client_keys"}, "", "unknown top-level key")

    deployments = _env_deployments(reader, env)
    file_deployments = [
        _parse_deployment(item, f"deployments[{i}]", env) for i, item in enumerate(file_data.get("deployments") or [])
    ]
    unused_provider_env: tuple[str, ...] = ()
    if file_deployments:
        # The file is authoritative: env-configured deployments are not added next to its own.
        referenced = _env_references(file_data)
        unused_provider_env = tuple(
            _PROVIDER_ENV[d.name] for d in deployments if _PROVIDER_ENV[d.name] not in referenced
        )
        deployments = file_deployments
    _check_unique([d.name for d in deployments])
    data_dir = reader.text("AILB_DATA_DIR", ".")

    settings = Settings(
        host=reader.text("HOST", "0.0.0.0"),
        http_port=reader.integer("HTTP_PORT", 8080, 0, 65535),
        grpc_port=reader.integer("GRPC_PORT", 50051, 0, 65535),
        enable_grpc=reader.flag("ENABLE_GRPC", True),
        module_id=reader.text("MODULE_ID", "ailb-1"),
        routing_strategy=reader.text("ROUTING_STRATEGY", "load_balanced"),
        deployments=tuple(deployments),
        model_aliases=_parse_aliases(file_data.get("model_aliases") or {}),
        api_keys=frozenset(k.strip() for k in reader.text("AILB_API_KEYS", "").split(",") if k.strip()),
        client_keys=_parse_client_keys(file_data.get("client_keys") or {}, env),
        admin_token=reader.text("AILB_ADMIN_TOKEN", ""),
        metrics_token=reader.text("METRICS_TOKEN", ""),
        http=HttpLimits(
            max_header_bytes=reader.integer("MAX_HEADER_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
            max_headers=reader.integer("MAX_HEADERS", 100, 8, 10_000),
            header_timeout=reader.number("HEADER_TIMEOUT", 10.0, 0.1, 3600),
            body_timeout=reader.number("BODY_TIMEOUT", 30.0, 0.1, 3600),
            keepalive_timeout=reader.number("KEEPALIVE_TIMEOUT", 75.0, 0.1, 3600),
            max_connections=reader.integer("MAX_CONNECTIONS", 4096, 1, 1_000_000),
        ),
        max_request_bytes=reader.integer("MAX_REQUEST_BYTES", 32 * 1024 * 1024, 1024, 2**31),
        drain_timeout=reader.number("DRAIN_TIMEOUT", 30.0, 0, 3600),
        log_level=reader.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        log_format=reader.choice("LOG_FORMAT", "text", ("text", "json")),
        tracing=_tracing(env),
        chroma_host=reader.text("CHROMA_HOST", ""),
        chroma_port=reader.integer("CHROMA_PORT", 8000, 1, 65535),
        embedding_backend=reader.choice("EMBEDDING_BACKEND", "local", ("local", "provider")),
        embedding_model=reader.text("EMBEDDING_MODEL", "all-MiniLM-L6-v2"),
        embedding_runtime=reader.choice("EMBEDDING_RUNTIME", "onnx", ("onnx", "torch")),
        embedding_deployment=reader.text("EMBEDDING_DEPLOYMENT", ""),
        router=RouterConfig(
            max_attempts=reader.integer("ROUTER_MAX_ATTEMPTS", 3, 1, 20),
            deadline=reader.number("ROUTER_DEADLINE", 600.0, 0.1, 86400),
            retry_budget_ratio=reader.number("ROUTER_RETRY_BUDGET", 0.2, 0, 10),
            failure_threshold=reader.integer("CIRCUIT_FAILURE_THRESHOLD", 3, 1, 1000),
            cooldown=reader.number("CIRCUIT_COOLDOWN", 5.0, 0.01, 3600),
            cooldown_cap=reader.number("CIRCUIT_COOLDOWN_MAX", 300.0, 0.01, 86400),
            health_check_interval=reader.number("HEALTH_CHECK_INTERVAL", 30.0, 0, 86400),
        ),
        memory=MemoryConfig(
            enabled=reader.flag("ENABLE_MEMORY", True),
            backend=reader.choice("MEMORY_BACKEND", "chromadb", ("chromadb",)),
            path=reader.text("MEMORY_PATH", os.path.join(data_dir, "ailb_memory")),
            ttl_days=reader.optional_float("MEMORY_TTL_DAYS", 0.001, 36500),
            recent_turns=reader.integer("MEMORY_RECENT_TURNS", 4, 0, 100),
            top_k=reader.integer("MEMORY_TOP_K", 4, 0, 100),
            max_tokens=reader.integer("MEMORY_MAX_TOKENS", 2000, 1, 1_000_000),
            similarity_threshold=reader.number("MEMORY_SIMILARITY_THRESHOLD", 0.3, -1, 1),
        ),
        rag=RagConfig(
            enabled=reader.flag("ENABLE_RAG", False),
            backend=reader.choice("RAG_BACKEND", "chromadb", ("chromadb",)),
            path=reader.text("RAG_PATH", os.path.join(data_dir, "ailb_rag")),
            default_top_k=reader.integer("RAG_TOP_K", 3, 1, 50),
            min_score=reader.number("RAG_MIN_SCORE", 0.2, -1, 1),
        ),
        config_path=path,
        spend_path=_spend_path(reader),
        data_dir=data_dir,
        unused_provider_env=unused_provider_env,
        redis_url=_redis_url(reader.text("REDIS_URL", "")),
        expected_instances=reader.integer("EXPECTED_INSTANCES", 1, 1, 10_000),
        workers=reader.integer("WORKERS", 1, 1, 256),
    )
    overrides = file_data.get("settings") or {}
    if overrides:
        settings = _apply_overrides(settings, overrides)
    _validate_aliases(settings)
    return settings


def _tracing(env: Mapping[str, str]) -> TracingConfig:
    try:
        return read_tracing_config(env)
    except TracingSettingError as exc:
        raise ConfigError(exc.key, exc.message) from None


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, key: str, default: str) -> str:
        value = self.env.get(key)
        return default if value is None or value == "" else value.strip()

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        raw = self.env.get(key, "")
        if not raw.strip():
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(key, f"expected an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(key, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.optional_float(key, low, high)
        return default if value is None else value

    def optional_float(self, key: str, low: float, high: float) -> float | None:
        raw = self.env.get(key, "")
        if not raw.strip():
            return None
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(key, f"expected a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(key, f"must be between {low} and {high}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        raw = self.env.get(key, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(key, f"expected true or false, got {raw!r}")

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key, default).lower()
        if value not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value


def _models(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.strip() for m in raw.split(",") if m.strip()))


def _env_deployments(reader: _EnvReader, env: Mapping[str, str]) -> list[DeploymentConfig]:
    found: list[DeploymentConfig] = []
    if reader.text("OPENAI_API_KEY", ""):
        found.append(
            DeploymentConfig(
                name="openai",
                provider="openai",
                base_url=_url("OPENAI_BASE_URL", reader.text("OPENAI_BASE_URL", "https://api.openai.com/v1")),
                api_key=reader.text("OPENAI_API_KEY", ""),
                models=_models(env.get("OPENAI_MODELS", "gpt-4o,gpt-4o-mini,gpt-4-turbo,gpt-3.5-turbo")),
                priority=DEFAULT_PRIORITY["openai"],
            )
        )
    if reader.text("ANTHROPIC_API_KEY", ""):
        found.append(
            DeploymentConfig(
                name="anthropic",
                provider="anthropic",
                base_url=_url("ANTHROPIC_BASE_URL", reader.text("ANTHROPIC_BASE_URL", "https://api.anthropic.com")),
                api_key=reader.text("ANTHROPIC_API_KEY", ""),
                models=_models(
                    env.get("ANTHROPIC_MODELS", "claude-3-5-sonnet-latest,claude-3-5-haiku-latest,claude-3-opus-latest")
                ),
                priority=DEFAULT_PRIORITY["anthropic"],
                default_max_tokens=reader.integer("ANTHROPIC_MAX_TOKENS", 4096, 1, 1_000_000),
            )
        )
    if reader.text("OLLAMA_BASE_URL", ""):
        found.append(
            DeploymentConfig(
                name="ollama",
                provider="ollama",
                base_url=_url("OLLAMA_BASE_URL", reader.text("OLLAMA_BASE_URL", "")),
                models=_models(env.get("OLLAMA_MODELS", "")),
                priority=DEFAULT_PRIORITY["ollama"],
                input_cost_per_1k=0.0,
                output_cost_per_1k=0.0,
            )
        )
    return found


_PROVIDER_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "ollama": "OLLAMA_BASE_URL"}


def _env_references(data: Any) -> set[str]:
    """Every ``${NAME}`` the config file's values (and mapping keys) refer to."""
    if isinstance(data, str):
        return set(_ENV_REF.findall(data))
    if isinstance(data, dict):
        return set().union(*(_env_references(k) | _env_references(v) for k, v in data.items()))
    if isinstance(data, list):
        return set().union(*(_env_references(item) for item in data))
    return set()


def _check_known(data: Mapping[str, Any], known: set[str], where: str, message: str) -> None:
    """An unknown key is an error naming it, with the closest known key as a suggestion."""
    unknown = sorted(str(k) for k in set(data) - known)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
        raise ConfigError(f"{where}.{key}" if where else key, message + hint)


def _url(key: str, value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(key, f"expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _expand(value: str, key: str, env: Mapping[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(key, f"refers to ${{{name}}}, which is not set")
        return env[name]

    return _ENV_REF.sub(sub, value)


_DEPLOYMENT_KEYS = {
    "name", "provider", "base_url", "api_key", "models", "weight", "priority", "version", "input_cost_per_1k",
    "output_cost_per_1k", "cache_read_cost_per_1k", "cache_write_cost_per_1k", "timeouts", "connect_timeout",
    "first_token_timeout", "idle_timeout", "total_timeout", "max_concurrency", "default_max_tokens",
    "max_output_tokens",
}  # fmt: skip
_DEFAULT_BASE_URL = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


def _parse_deployment(item: Any, where: str, env: Mapping[str, str]) -> DeploymentConfig:
    if not isinstance(item, dict):
        raise ConfigError(where, "each deployment must be a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}.name", "required; letters, digits, '.', '_' or '-' (max 64)")
    where = f"deployments[{name}]"
    _check_known(item, _DEPLOYMENT_KEYS, where, "unknown key")
    provider = item.get("provider")
    if provider not in PROVIDER_KINDS:
        raise ConfigError(f"{where}.provider", f"must be one of {', '.join(PROVIDER_KINDS)}, got {provider!r}")
    base_url = item.get("base_url") or _DEFAULT_BASE_URL.get(provider, "")
    if not base_url:
        raise ConfigError(f"{where}.base_url", "required for ollama deployments")
    base_url = _url(f"{where}.base_url", _expand(str(base_url), f"{where}.base_url", env))
    api_key = _expand(str(item.get("api_key") or ""), f"{where}.api_key", env)
    if provider != "ollama" and not api_key:
        raise ConfigError(f"{where}.api_key", f"required for {provider} deployments")
    models = item.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f"{where}.models", "must be a list of model names")
    if not models and provider != "ollama":
        raise ConfigError(f"{where}.models", "at least one model is required (only ollama discovers its own)")
    timeouts = _parse_timeouts(item, where)
    return DeploymentConfig(
        name=name,
        provider=provider,
        base_url=base_url,
        api_key=api_key,
        models=tuple(dict.fromkeys(models)),
        weight=_number(item, "weight", where, 1.0, 0, 1_000_000),
        priority=int(_number(item, "priority", where, DEFAULT_PRIORITY[provider], -1_000_000, 1_000_000)),
        version=str(item.get("version") or ""),
        input_cost_per_1k=_optional_number(item, "input_cost_per_1k", where, 0.0 if provider == "ollama" else None),
        output_cost_per_1k=_optional_number(item, "output_cost_per_1k", where, 0.0 if provider == "ollama" else None),
        cache_read_cost_per_1k=_optional_number(item, "cache_read_cost_per_1k", where, None),
        cache_write_cost_per_1k=_optional_number(item, "cache_write_cost_per_1k", where, None),
        timeouts=timeouts,
        max_concurrency=(
            int(_number(item, "max_concurrency", where, 0, 1, 1_000_000)) if "max_concurrency" in item else None
        ),
        default_max_tokens=int(_number(item, "default_max_tokens", where, 4096, 1, 1_000_000)),
        max_output_tokens=(
            int(_number(item, "max_output_tokens", where, 0, 1, 10_000_000)) if "max_output_tokens" in item else None
        ),
    )


def _parse_timeouts(item: dict[str, Any], where: str) -> Timeouts:
    raw = dict(item.get("timeouts") or {})
    if not isinstance(item.get("timeouts") or {}, dict):
        raise ConfigError(f"{where}.timeouts", "must be a mapping")
    for flat in ("connect", "first_token", "idle", "total"):
        if f"{flat}_timeout" in item:
            raw[flat] = item[f"{flat}_timeout"]
    _check_known(raw, {"connect", "first_token", "idle", "total"}, f"{where}.timeouts", "unknown key")
    defaults = Timeouts()
    values = {k: _number(raw, k, f"{where}.timeouts", getattr(defaults, k), 0.001, 86400) for k in raw}
    return replace(defaults, **values)


def _number(item: Mapping[str, Any], key: str, where: str, default: float, low: float, high: float) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key}", f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}.{key}", f"must be between {low} and {high}, got {value}")
    return float(value)


def _optional_number(item: Mapping[str, Any], key: str, where: str, default: float | None) -> float | None:
    if item.get(key) is None:
        return default
    return _number(item, key, where, 0.0, 0, 1_000_000)


def _parse_aliases(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise ConfigError("model_aliases", "must be a mapping of alias -> list of model names")
    aliases: dict[str, tuple[str, ...]] = {}
    for alias, targets in raw.items():
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigError(f"model_aliases.{alias}", "must be a non-empty list of model names")
        aliases[str(alias)] = tuple(targets)
    return aliases


_CLIENT_KEY_FIELDS = {"name", "models", "collections", "rpm", "tpm", "max_budget_usd", "budget_period"}


def _parse_client_keys(raw: Any, env: Mapping[str, str]) -> tuple[ClientKeyConfig, ...]:
    """``client_keys: {<key or ${ENV}>: {name, models, collections, rpm, tpm, max_budget_usd, budget_period}}``.

    Errors name an entry by its ``name`` (or its position), never by the key itself.
    """
    if not isinstance(raw, dict):
        raise ConfigError("client_keys", "must be a mapping of client key -> {name: ..., models: [...], ...}")
    entries: list[ClientKeyConfig] = []
    for index, (key, spec) in enumerate(raw.items()):
        where = f"client_keys[{index}]"
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise ConfigError(where, "each entry must be a mapping")
        name = spec.get("name")
        if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
            raise ConfigError(f"{where}.name", "letters, digits, '.', '_' or '-' (max 64)")
        where = f"client_keys[{name}]" if name else where
        _check_known(spec, _CLIENT_KEY_FIELDS, where, "unknown key")
        value = _expand(str(key), where, env).strip()
        if not value:
            raise ConfigError(where, "the key is empty")
        entries.append(_client_key(value, name, spec, where))
    _check_client_keys(entries)
    return tuple(entries)


def _client_key(key: str, name: str | None, spec: dict[str, Any], where: str) -> ClientKeyConfig:
    try:
        period = parse_period(str(spec.get("budget_period") or DEFAULT_PERIOD.text))
    except ValueError as exc:
        raise ConfigError(f"{where}.budget_period", str(exc)) from None
    return ClientKeyConfig(
        key=key,
        name=name,
        models=_names(spec, "models", where),
        collections=_names(spec, "collections", where),
        rpm=_limit(spec, "rpm", where),
        tpm=_limit(spec, "tpm", where),
        max_budget_usd=(
            None if spec.get("max_budget_usd") is None else _number(spec, "max_budget_usd", where, 0, 0, 1e9)
        ),
        budget_period=period,
    )


def _names(spec: Mapping[str, Any], field_name: str, where: str) -> frozenset[str] | None:
    if spec.get(field_name) is None:
        return None
    values = spec[field_name]
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{where}.{field_name}", "must be a list of names")
    return frozenset(values)


def _limit(spec: Mapping[str, Any], field_name: str, where: str) -> int | None:
    value = spec.get(field_name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**12:
        raise ConfigError(f"{where}.{field_name}", f"expected a whole number of at least 1, got {value!r}")
    return value


def _check_client_keys(entries: list[ClientKeyConfig]) -> None:
    keys: set[str] = set()
    names: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.key in keys:
            raise ConfigError(f"client_keys[{entry.name or index}]", "the same key is listed twice")
        if entry.name in names:
            raise ConfigError(f"client_keys[{entry.name}].name", "two client keys have this name")
        keys.add(entry.key)
        if entry.name:
            names.add(entry.name)


def _spend_path(reader: _EnvReader) -> str:
    """``SPEND_PATH``: default ``ailb_spend.sqlite3`` next to the memory folder; ``none`` keeps spend in memory."""
    value = reader.text("SPEND_PATH", "")
    if value.lower() == "none":
        return ""
    if value:
        return value
    memory = Path(reader.text("MEMORY_PATH", os.path.join(reader.text("AILB_DATA_DIR", "."), "ailb_memory")))
    return str(memory.parent / "ailb_spend.sqlite3")


def _redis_url(value: str) -> str:
    if value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL", f"expected redis://, rediss:// or unix:// URL, got {redact_url(value)!r}")
    return value


def _validate_aliases(settings: Settings) -> None:
    served = {m for d in settings.deployments for m in d.models}
    discovering = any(d.provider == "ollama" for d in settings.deployments)
    for alias, targets in settings.model_aliases.items():
        missing = [t for t in targets if t not in served]
        if missing and not discovering:
            raise ConfigError(f"model_aliases.{alias}", f"no deployment serves {missing[0]!r}")


_OVERRIDABLE = {"routing_strategy", "max_request_bytes", "drain_timeout", "module_id"}


def _apply_overrides(settings: Settings, overrides: Any) -> Settings:
    if not isinstance(overrides, dict):
        raise ConfigError("settings", "must be a mapping")
    _check_known(overrides, _OVERRIDABLE, "settings", "unknown key")
    if any(isinstance(v, dict | list) or v is None for v in overrides.values()):
        key = next(k for k, v in overrides.items() if isinstance(v, dict | list) or v is None)
        raise ConfigError(f"settings.{key}", "expected a single value")
    # The file's values go through the same checks as the environment variables they stand for.
    reader = _EnvReader({f"settings.{k}": str(v) for k, v in overrides.items()})
    return replace(
        settings,
        routing_strategy=reader.text("settings.routing_strategy", settings.routing_strategy),
        module_id=reader.text("settings.module_id", settings.module_id),
        max_request_bytes=reader.integer("settings.max_request_bytes", settings.max_request_bytes, 1024, 2**31),
        drain_timeout=reader.number("settings.drain_timeout", settings.drain_timeout, 0, 3600),
    )


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"deployments[{name}]", "duplicate deployment name")
        seen.add(name)


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("AILB_CONFIG", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's own message quotes the offending line, which may hold a key: say where, not what.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError("AILB_CONFIG", f"{path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("AILB_CONFIG", f"{path} must hold a mapping at the top level")
    return data
