"""Looking a model up in a table of well-known models (prices, output limits)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")
_VERSION_SEPARATORS = ("-", ":", "@")


def lookup(table: Mapping[str, T], model: str) -> T | None:
    """``table``'s entry for ``model``: its exact name (without a ``provider/`` prefix, any casing), else the
    longest known prefix ending at a version separator (``gpt-4o-2024-08-06`` → ``gpt-4o``); else None."""
    name = model.rsplit("/", 1)[-1].lower()
    if name in table:
        return table[name]
    best = ""
    for known in table:
        if len(known) > len(best) and name.startswith(known) and name[len(known)] in _VERSION_SEPARATORS:
            best = known
    return table[best] if best else None
