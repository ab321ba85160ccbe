"""``ConfigError`` and the wording of unknown-key errors (with a did-you-mean)."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any


class ConfigError(ValueError):
    """A configuration key has a bad value. ``key`` names it (env var or YAML path)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def check_known(data: Mapping[Any, Any], known: Collection[str], where: str, message: str = "unknown key") -> None:
    """An unknown key is an error naming its path, with the closest known key as a suggestion."""
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
        raise ConfigError(f"{where}.{key}" if where else key, message + hint)
