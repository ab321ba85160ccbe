"""The YAML config file: reading it, its top-level keys, and its ``settings:`` section.

``settings:`` holds the same settings as the environment table (``config/env.py``) under their paths, nested
by group (``settings: {memory: {top_k: 8}}``); each scalar is checked exactly like its environment variable.
Errors name the path (``settings.memory.top_k``), and an unknown key gets the closest known one as a hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ailb.config.env import FILE_VARS
from ailb.config.errors import ConfigError, check_known
from ailb.config.values import expand

SECTIONS = ("deployments", "model_aliases", "settings", "client_keys")
SETTINGS = "settings"


def read_yaml(path: str) -> dict[str, Any]:
    """The file's top-level mapping (empty for an empty file); its keys are checked against ``SECTIONS``."""
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
    check_known(data, SECTIONS, "", "unknown top-level key")
    return data


def settings_keys(prefix: str = "") -> set[str]:
    """The keys the ``settings:`` section accepts at ``prefix`` (``""`` or a group such as ``"memory."``)."""
    return {path[len(prefix) :].partition(".")[0] for path in FILE_VARS if path.startswith(prefix)}


def read_settings(section: Any, env: Mapping[str, str]) -> dict[str, object]:
    """The ``settings:`` section: path → typed value."""
    values: dict[str, object] = {}
    if section is not None:
        _read_group(section, "", env, values)
    return values


def _read_group(group: Any, prefix: str, env: Mapping[str, str], values: dict[str, object]) -> None:
    where = f"{SETTINGS}.{prefix}".rstrip(".")
    if not isinstance(group, dict):
        raise ConfigError(where, "must be a mapping")
    check_known(group, settings_keys(prefix), where)
    for name, value in group.items():
        path = f"{prefix}{name}"
        key = f"{SETTINGS}.{path}"
        var = FILE_VARS.get(path)
        if var is None:
            _read_group(value, f"{path}.", env, values)
        elif isinstance(value, dict | list) or value is None:
            raise ConfigError(key, "expected a single value")
        else:
            text = expand(str(value), key, env)
            if text.strip():  # like an empty environment variable, an empty value leaves the default
                values[path] = var.type.parse(text, key)
