"""The config file's ``client_keys:`` section: ``{<key or ${ENV}>: {name, models, collections, rpm, tpm,
max_budget_usd, budget_period}}``.

Errors name an entry by its ``name`` (or its position), never by the key itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ailb.config.deployments import NAME, NAME_RULE, number
from ailb.config.errors import ConfigError, check_known
from ailb.config.schema import ClientKeyConfig
from ailb.config.values import expand
from ailb.governance.periods import DEFAULT_PERIOD, BudgetPeriod, parse_period

CLIENT_KEY_FIELDS = frozenset({"name", "models", "collections", "rpm", "tpm", "max_budget_usd", "budget_period"})


def parse_client_keys(raw: Any, env: Mapping[str, str]) -> tuple[ClientKeyConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError("client_keys", "must be a mapping of client key -> {name: ..., models: [...], ...}")
    entries = tuple(_entry(index, str(key), spec, env) for index, (key, spec) in enumerate(raw.items()))
    _check_unique(entries)
    return entries


def _entry(index: int, key: str, spec: Any, env: Mapping[str, str]) -> ClientKeyConfig:
    where = f"client_keys[{index}]"
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise ConfigError(where, "each entry must be a mapping")
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not NAME.fullmatch(name)):
        raise ConfigError(f"{where}.name", NAME_RULE)
    where = f"client_keys[{name}]" if name else where
    check_known(spec, CLIENT_KEY_FIELDS, where)
    value = expand(key, where, env).strip()
    if not value:
        raise ConfigError(where, "the key is empty")
    return ClientKeyConfig(
        key=value,
        name=name,
        models=_names(spec, "models", where),
        collections=_names(spec, "collections", where),
        rpm=_limit(spec, "rpm", where),
        tpm=_limit(spec, "tpm", where),
        max_budget_usd=None if spec.get("max_budget_usd") is None else number(spec, "max_budget_usd", where, 0, 1e9),
        budget_period=_period(spec, where),
    )


def _period(spec: Mapping[str, Any], where: str) -> BudgetPeriod:
    try:
        return parse_period(str(spec.get("budget_period") or DEFAULT_PERIOD.text))
    except ValueError as exc:
        raise ConfigError(f"{where}.budget_period", str(exc)) from None


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


def _check_unique(entries: tuple[ClientKeyConfig, ...]) -> None:
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
