"""``load_settings`` in two phases.

1. ``read_raw``: the environment (through the table in ``env.py``) and the YAML file (``file.py``, with its
   ``deployments``, ``model_aliases`` and ``client_keys`` sections) become a ``RawConfig``: every value of its
   type and in its range, every unknown key rejected with its path, nothing defaulted yet.
2. ``validate``: the one step that applies the defaults that depend on other settings, checks what spans
   several settings, and builds the frozen ``Settings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ailb.config.client_keys import parse_client_keys
from ailb.config.deployments import (
    check_aliases,
    check_model_kinds,
    check_unique_names,
    env_deployments,
    file_deployments,
    parse_aliases,
)
from ailb.config.env import PROVIDERS, read_env
from ailb.config.errors import ConfigError
from ailb.config.file import read_settings, read_yaml
from ailb.config.schema import (
    GROUPS,
    MEMORY_FOLDER,
    RAG_FOLDER,
    SPEND_FILE,
    ClientKeyConfig,
    DeploymentConfig,
    Settings,
    field_default,
)
from ailb.config.values import env_references
from ailb.observability.tracing_config import TracingConfig, TracingSettingError, read_tracing_config


@dataclass(frozen=True, slots=True)
class RawConfig:
    """What the environment and the config file say, before defaults and checks across settings."""

    values: Mapping[str, object]  # table path → value; the file's ``settings:`` wins over the environment
    config_path: str
    file_deployments: tuple[DeploymentConfig, ...]
    model_aliases: Mapping[str, tuple[str, ...]]
    client_keys: tuple[ClientKeyConfig, ...]
    env_references: frozenset[str]  # the ``${NAME}``s the file refers to
    tracing: TracingConfig  # the standard OTEL_* variables (observability/tracing_config.py reads them)


def load_settings(env: Mapping[str, str] | None = None, config_path: str | None = None) -> Settings:
    """Build ``Settings`` from ``env`` (default ``os.environ``) and the YAML file it names, if any."""
    env = dict(os.environ if env is None else env)
    return validate(read_raw(env, config_path))


def read_raw(env: Mapping[str, str], config_path: str | None = None) -> RawConfig:
    values = read_env(env)
    path = config_path or str(values.get("config_path", ""))
    data = read_yaml(path) if path else {}
    deployments = file_deployments(data.get("deployments"), env)
    aliases = parse_aliases(data.get("model_aliases"))
    client_keys = parse_client_keys(data.get("client_keys"), env)
    file_values = read_settings(data.get("settings"), env)
    return RawConfig(
        values={**values, **file_values},
        config_path=path,
        file_deployments=deployments,
        model_aliases=aliases,
        client_keys=client_keys,
        env_references=env_references(data),
        tracing=_tracing(env),
    )


def _tracing(env: Mapping[str, str]) -> TracingConfig:
    try:
        return read_tracing_config(env)
    except TracingSettingError as exc:
        raise ConfigError(exc.key, exc.message) from None


def validate(raw: RawConfig) -> Settings:
    deployments, unused_provider_env = _deployments(raw)
    check_unique_names(deployments)
    check_aliases(raw.model_aliases, deployments)
    check_model_kinds(deployments)
    values = {path: value for path, value in raw.values.items() if not path.startswith(PROVIDERS)}
    values.update(_store_places(raw.values))
    values.update(
        deployments=deployments,
        model_aliases=dict(raw.model_aliases),
        client_keys=raw.client_keys,
        config_path=raw.config_path,
        unused_provider_env=unused_provider_env,
        tracing=raw.tracing,
    )
    settings: Settings = _build(Settings, values)
    return settings


def _deployments(raw: RawConfig) -> tuple[tuple[DeploymentConfig, ...], tuple[str, ...]]:
    """The deployments, and the provider variables that are set but unused.

    A file that lists deployments is authoritative: the provider variables then add none of their own, and one
    the file does not refer to (as ``${NAME}``) is reported.
    """
    from_env = env_deployments(raw.values)
    if not raw.file_deployments:
        return tuple(from_env), ()
    unused = tuple(d.kind.configured_by for d in from_env if d.kind.configured_by not in raw.env_references)
    return raw.file_deployments, unused


def _store_places(values: Mapping[str, object]) -> dict[str, object]:
    """The embedded stores and the spend file default to places inside the data folder."""
    data_dir = str(values.get("data_dir", field_default(Settings, "data_dir")))
    memory = str(values.get("memory.path") or os.path.join(data_dir, MEMORY_FOLDER))
    rag = str(values.get("rag.path") or os.path.join(data_dir, RAG_FOLDER))
    spend = values["spend_path"] if "spend_path" in values else str(Path(memory).parent / SPEND_FILE)
    return {"data_dir": data_dir, "memory.path": memory, "rag.path": rag, "spend_path": spend}


def _build(cls: Any, values: Mapping[str, object], prefix: str = "") -> Any:
    """An instance of dataclass ``cls`` from the ``values`` at its paths; the rest keep their defaults."""
    arguments: dict[str, object] = {}
    for item in fields(cls):
        path = prefix + item.name
        if not prefix and path in GROUPS:
            arguments[item.name] = _build(GROUPS[path], values, f"{path}.")
        elif path in values:
            arguments[item.name] = values[path]
    return cls(**arguments)
