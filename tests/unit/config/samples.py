"""Valid and invalid texts for each value type of the environment table, and a reader of settings by path."""

from __future__ import annotations

from typing import Any

from ailb.config.env import PROVIDERS, Var
from ailb.config.values import Choice, Flag, Integer, KeySet, Names, Number, PathOrNone, RedisUrl, Text, Url
from ailb.settings import Settings


def valid(var: Var) -> list[tuple[str, Any]]:
    """(text, the value it parses to) pairs that the variable accepts."""
    kind = var.type
    if isinstance(kind, Integer):
        return [(str(kind.low), kind.low), (f" {kind.high} ", kind.high)]
    if isinstance(kind, Number):
        return [(str(kind.low), kind.low), (str(kind.high), kind.high)]
    if isinstance(kind, Flag):
        return [("TRUE", True), ("off", False)]
    if isinstance(kind, Choice):
        return [(option.upper(), option) for option in kind.options]
    if isinstance(kind, Names):
        return [("a, b,,a", ("a", "b"))]
    if isinstance(kind, KeySet):
        return [("key-one, key-two", frozenset({"key-one", "key-two"}))]
    if isinstance(kind, Url):
        return [("http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1")]
    if isinstance(kind, PathOrNone):
        return [("None", ""), ("/srv/x.db", "/srv/x.db")]
    if isinstance(kind, RedisUrl):
        return [("rediss://:pw@cache:6380/2", "rediss://:pw@cache:6380/2"), ("unix:///run/r.sock", "unix:///run/r.sock")]
    assert isinstance(kind, Text), kind
    return [(" some-value ", "some-value")]


def invalid(var: Var) -> list[str]:
    """Texts the variable refuses."""
    kind = var.type
    if isinstance(kind, Integer):
        return [str(kind.low - 1), str(kind.high + 1), "1.5", "many"]
    if isinstance(kind, Number):
        return [str(kind.low - 1), str(kind.high + 1), "soon"]
    if isinstance(kind, Flag):
        return ["maybe"]
    if isinstance(kind, Choice):
        return ["no-such-choice"]
    if isinstance(kind, Url):
        return ["api.example.com", "ftp://example.com"]
    if isinstance(kind, RedisUrl):
        return ["http://cache:6379", "cache:6379"]
    return []


def at_path(settings: Settings, path: str) -> Any:
    assert not path.startswith(PROVIDERS)
    value: Any = settings
    for name in path.split("."):
        value = getattr(value, name)
    return value
