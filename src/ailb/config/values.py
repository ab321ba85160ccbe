"""The types of setting values: each parses the text of an environment variable (or of a scalar in the config
file's ``settings:`` section, which is checked the same way) and raises ``ConfigError`` naming the key.

An empty variable counts as unset, so parsers never see an empty text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from ailb.config.errors import ConfigError
from ailb.redaction import redact_url

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL = re.compile(r"^https?://[^\s/]+")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class ValueType(Protocol):
    def parse(self, text: str, key: str) -> object: ...

    def describe(self) -> str:
        """What the value may be, for the documentation."""
        ...


@dataclass(frozen=True, slots=True)
class Text:
    label: str = "text"  # what the text is, for the documentation

    def parse(self, text: str, key: str) -> str:
        return text.strip()

    def describe(self) -> str:
        return self.label


@dataclass(frozen=True, slots=True)
class Integer:
    low: int
    high: int

    def parse(self, text: str, key: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigError(key, f"expected an integer, got {text!r}") from None
        _check_range(value, self.low, self.high, key)
        return value

    def describe(self) -> str:
        return f"integer, {self.low} to {self.high}"


@dataclass(frozen=True, slots=True)
class Number:
    low: float
    high: float

    def parse(self, text: str, key: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ConfigError(key, f"expected a number, got {text!r}") from None
        _check_range(value, self.low, self.high, key)
        return value

    def describe(self) -> str:
        return f"number, {self.low} to {self.high}"


@dataclass(frozen=True, slots=True)
class Flag:
    def parse(self, text: str, key: str) -> bool:
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(key, f"expected true or false, got {word!r}")

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True, slots=True)
class Choice:
    options: tuple[str, ...]

    def parse(self, text: str, key: str) -> str:
        value = text.strip().lower()
        if value not in self.options:
            raise ConfigError(key, f"must be one of {', '.join(self.options)}, got {value!r}")
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)


@dataclass(frozen=True, slots=True)
class Names:
    """A comma-separated list, kept in order without repeats; with ``none_word``, that word alone is the empty
    list (an empty variable counts as unset, so it cannot say "none")."""

    none_word: str = ""

    def parse(self, text: str, key: str) -> tuple[str, ...]:
        if self.none_word and text.strip().lower() == self.none_word:
            return ()
        return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))

    def describe(self) -> str:
        return f"comma-separated list, or `{self.none_word}`" if self.none_word else "comma-separated list"


@dataclass(frozen=True, slots=True)
class KeySet:
    """A comma-separated set of secrets."""

    def parse(self, text: str, key: str) -> frozenset[str]:
        return frozenset(part.strip() for part in text.split(",") if part.strip())

    def describe(self) -> str:
        return "comma-separated list"


@dataclass(frozen=True, slots=True)
class Url:
    def parse(self, text: str, key: str) -> str:
        return http_url(text.strip(), key)

    def describe(self) -> str:
        return "http(s) URL"


@dataclass(frozen=True, slots=True)
class RedisUrl:
    def parse(self, text: str, key: str) -> str:
        value = text.strip()
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(key, f"expected redis://, rediss:// or unix:// URL, got {redact_url(value)!r}")
        return value

    def describe(self) -> str:
        return "redis://, rediss:// or unix:// URL"


@dataclass(frozen=True, slots=True)
class PathOrNone:
    """A file path, or ``none`` (any casing) for "no file": parsed to ``""``."""

    def parse(self, text: str, key: str) -> str:
        value = text.strip()
        return "" if value.lower() == "none" else value

    def describe(self) -> str:
        return "file path, or none"


def http_url(value: str, key: str) -> str:
    if not _URL.match(value):
        raise ConfigError(key, f"expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def expand(value: str, key: str, env: Mapping[str, str]) -> str:
    """``value`` with every ``${NAME}`` replaced by that environment variable; an unset one is an error."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(key, f"refers to ${{{name}}}, which is not set")
        return env[name]

    return _ENV_REF.sub(sub, value)


def env_references(data: object) -> frozenset[str]:
    """Every ``${NAME}`` the config file's values (and mapping keys) refer to."""
    if isinstance(data, str):
        return frozenset(_ENV_REF.findall(data))
    if isinstance(data, dict):
        return frozenset().union(*(env_references(k) | env_references(v) for k, v in data.items()))
    if isinstance(data, list):
        return frozenset().union(*(env_references(item) for item in data))
    return frozenset()


def _check_range(value: float, low: float, high: float, key: str) -> None:
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {value}")
