"""Deployments: the config file's ``deployments:`` list, and the ones the provider variables configure.

What differs between provider kinds (default URL and priority, whether a key or models are required, whether
the kind is free) is asked of the kind's record, never decided by its name here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ailb.config.env import default_of, provider_vars
from ailb.config.errors import ConfigError, check_known
from ailb.config.schema import DeploymentConfig, Timeouts, field_default
from ailb.config.values import expand, http_url
from ailb.providers.kinds import KIND_NAMES, ProviderKind, provider_kind, provider_kinds

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = "letters, digits, '.', '_' or '-' (max 64)"
TIMEOUT_KEYS = ("connect", "first_token", "idle", "total")
FLAT_TIMEOUT_KEYS = tuple(f"{key}_timeout" for key in TIMEOUT_KEYS)  # ``connect_timeout: 5`` = ``timeouts.connect``
DEPLOYMENT_KEYS = frozenset(
    {
        "name", "provider", "base_url", "api_key", "models", "weight", "priority", "version", "input_cost_per_1k",
        "output_cost_per_1k", "cache_read_cost_per_1k", "cache_write_cost_per_1k", "timeouts", "max_concurrency",
        "default_max_tokens", "max_output_tokens", "embedding_models", *FLAT_TIMEOUT_KEYS,
    }
)  # fmt: skip
_PRICES = ("input_cost_per_1k", "output_cost_per_1k", "cache_read_cost_per_1k", "cache_write_cost_per_1k")
_FREE_PRICES = ("input_cost_per_1k", "output_cost_per_1k")  # a free kind's default; cache prices stay unset


def env_deployments(values: Mapping[str, object]) -> list[DeploymentConfig]:
    """One deployment per provider kind whose configuring variable is set, named after the kind."""
    found: list[DeploymentConfig] = []
    for kind in provider_kinds():
        if not values.get(configuring_path(kind)):
            continue
        settings: dict[str, Any] = {
            var.path.rpartition(".")[2]: values.get(var.path, default_of(var)) for var in provider_vars(kind)
        }
        found.append(
            DeploymentConfig(
                name=kind.name, provider=kind.name, priority=kind.default_priority, **settings, **_kind_prices(kind)
            )
        )
    return found


def configuring_path(kind: ProviderKind) -> str:
    """The path of the variable whose presence creates ``kind``'s env-configured deployment."""
    return next(var.path for var in provider_vars(kind) if var.name == kind.configured_by)


def file_deployments(raw: Any, env: Mapping[str, str]) -> tuple[DeploymentConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("deployments", "must be a list of deployments")
    return tuple(parse_deployment(item, f"deployments[{index}]", env) for index, item in enumerate(raw))


def parse_deployment(item: Any, where: str, env: Mapping[str, str]) -> DeploymentConfig:
    if not isinstance(item, dict):
        raise ConfigError(where, "each deployment must be a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(f"{where}.name", f"required; {NAME_RULE}")
    where = f"deployments[{name}]"
    check_known(item, DEPLOYMENT_KEYS, where)
    kind = _kind(item, where)
    return DeploymentConfig(
        name=name,
        provider=kind.name,
        base_url=_base_url(item, kind, where, env),
        api_key=_api_key(item, kind, where, env),
        models=_models(item, kind, where),
        embedding_models=_embedding_models(item, kind, where),
        weight=number(item, "weight", where, 0, 1_000_000, _default("weight")),
        priority=int(number(item, "priority", where, -1_000_000, 1_000_000, kind.default_priority)),
        version=str(item.get("version") or ""),
        timeouts=_timeouts(item, where),
        max_concurrency=_optional_whole(item, "max_concurrency", where, 1_000_000),
        default_max_tokens=int(number(item, "default_max_tokens", where, 1, 1_000_000, _default("default_max_tokens"))),
        max_output_tokens=_optional_whole(item, "max_output_tokens", where, 10_000_000),
        **_prices(item, kind, where),
    )


def number(item: Mapping[str, Any], key: str, where: str, low: float, high: float, default: float = 0) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key}", f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}.{key}", f"must be between {low} and {high}, got {value}")
    return float(value)


def _default(name: str) -> Any:
    return field_default(DeploymentConfig, name)


def _kind(item: Mapping[str, Any], where: str) -> ProviderKind:
    provider = item.get("provider")
    if provider not in KIND_NAMES:
        raise ConfigError(f"{where}.provider", f"must be one of {', '.join(KIND_NAMES)}, got {provider!r}")
    return provider_kind(provider)


def _base_url(item: Mapping[str, Any], kind: ProviderKind, where: str, env: Mapping[str, str]) -> str:
    base_url = item.get("base_url") or kind.default_base_url
    if not base_url:
        raise ConfigError(f"{where}.base_url", f"required for {kind.name} deployments")
    return http_url(expand(str(base_url), f"{where}.base_url", env), f"{where}.base_url")


def _api_key(item: Mapping[str, Any], kind: ProviderKind, where: str, env: Mapping[str, str]) -> str:
    api_key = expand(str(item.get("api_key") or ""), f"{where}.api_key", env)
    if kind.key_required and not api_key:
        raise ConfigError(f"{where}.api_key", f"required for {kind.name} deployments")
    return api_key


def _names(item: Mapping[str, Any], key: str, where: str) -> list[str]:
    names = item.get(key) or []
    if not isinstance(names, list) or not all(isinstance(m, str) and m for m in names):
        raise ConfigError(f"{where}.{key}", "must be a list of model names")
    return names


def _embedding_models(item: Mapping[str, Any], kind: ProviderKind, where: str) -> tuple[str, ...]:
    names = _names(item, "embedding_models", where)
    if names and not kind.embeddings:
        raise ConfigError(f"{where}.embedding_models", f"{kind.name} deployments have no embeddings endpoint")
    return tuple(dict.fromkeys(names))


def _models(item: Mapping[str, Any], kind: ProviderKind, where: str) -> tuple[str, ...]:
    models = _names(item, "models", where)
    if not models and not kind.discovers_models and not item.get("embedding_models"):
        discovering = ", ".join(k.name for k in provider_kinds() if k.discovers_models)
        raise ConfigError(f"{where}.models", f"at least one model is required (only {discovering} discovers its own)")
    return tuple(dict.fromkeys(models))


def _kind_prices(kind: ProviderKind) -> dict[str, Any]:
    return dict.fromkeys(_FREE_PRICES, 0.0) if kind.free else {}


def _prices(item: Mapping[str, Any], kind: ProviderKind, where: str) -> dict[str, float | None]:
    """Prices in USD per 1,000 tokens; unset ones stay ``None`` (the price table decides), or 0 for a free kind."""
    defaults: dict[str, float | None] = {key: None for key in _PRICES} | _kind_prices(kind)
    return {
        key: defaults[key] if item.get(key) is None else number(item, key, where, 0, 1_000_000) for key in _PRICES
    }


def _optional_whole(item: Mapping[str, Any], key: str, where: str, high: int) -> int | None:
    return int(number(item, key, where, 1, high)) if key in item else None


def _timeouts(item: Mapping[str, Any], where: str) -> Timeouts:
    nested = item.get("timeouts") or {}
    if not isinstance(nested, dict):
        raise ConfigError(f"{where}.timeouts", "must be a mapping")
    raw = dict(nested)
    for key, flat in zip(TIMEOUT_KEYS, FLAT_TIMEOUT_KEYS, strict=True):
        if flat in item:
            raw[key] = item[flat]
    check_known(raw, TIMEOUT_KEYS, f"{where}.timeouts")
    values = {key: number(raw, key, f"{where}.timeouts", 0.001, 86400) for key in raw}
    return replace(Timeouts(), **values)


def parse_aliases(raw: Any) -> dict[str, tuple[str, ...]]:
    """``model_aliases: {alias: [model, ...]}`` (a single model may be written without the list)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("model_aliases", "must be a mapping of alias -> list of model names")
    aliases: dict[str, tuple[str, ...]] = {}
    for alias, targets in raw.items():
        listed = [targets] if isinstance(targets, str) else targets
        if not isinstance(listed, list) or not listed or not all(isinstance(t, str) and t for t in listed):
            raise ConfigError(f"model_aliases.{alias}", "must be a non-empty list of model names")
        aliases[str(alias)] = tuple(listed)
    return aliases


def check_aliases(aliases: Mapping[str, tuple[str, ...]], deployments: tuple[DeploymentConfig, ...]) -> None:
    """Every alias target is served, unless a deployment discovers its models (they are not known yet)."""
    if any(d.kind.discovers_models for d in deployments):
        return
    served = {m for d in deployments for m in d.models}
    for alias, targets in aliases.items():
        missing = [t for t in targets if t not in served]
        if missing:
            raise ConfigError(f"model_aliases.{alias}", f"no deployment serves {missing[0]!r}")


def check_model_kinds(deployments: tuple[DeploymentConfig, ...]) -> None:
    """A name is a chat model or an embedding model, never both (clients could not tell which it is)."""
    chat = {m for d in deployments for m in d.models}
    for deployment in deployments:
        both = sorted(chat.intersection(deployment.embedding_models))
        if both:
            key = f"deployments[{deployment.name}].embedding_models"
            raise ConfigError(key, f"{both[0]!r} is also served as a chat model")


def check_unique_names(deployments: tuple[DeploymentConfig, ...]) -> None:
    seen: set[str] = set()
    for deployment in deployments:
        if deployment.name in seen:
            raise ConfigError(f"deployments[{deployment.name}]", "duplicate deployment name")
        seen.add(deployment.name)
