"""Redaction: what of a text may leave the process.

One ``Redactor`` holds every configured secret (provider keys, the admin token, client keys) and serves
everything that sends text out of AILB: log lines, error answers, SSE error events, and answers themselves.

- ``redactor(text)`` is for error texts and log lines: it masks the configured secrets in any casing, also
  when written with JSON ``\\uXXXX`` escapes, and anything shaped like a credential: ``Bearer …``, ``sk-…``
  (and ``pk-``/``rk-``) keys, ``x-api-key``/``api_key`` and ``Authorization`` values.
- ``redactor.secrets`` (a ``SecretSet``) is for model answers: only the exact configured secrets, because
  credential *shapes* are legitimate in answers (code that shows how to send ``Authorization: Bearer $TOKEN``).
  ``providers/scrub.py`` applies it to whole answers and streams.

Strings shorter than ``MIN_SECRET_LENGTH`` are not treated as secrets: placeholder keys such as ``none`` or
``EMPTY`` (common for local OpenAI-compatible servers) would otherwise mask ordinary words in every answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "****"
MIN_SECRET_LENGTH = 8
MAX_TREE_DEPTH = 8  # ``Redactor.tree`` writes values nested deeper than this as their (redacted) text
_FEW_SECRETS = 8  # up to this many, plain substring searches beat one regular expression
_Trie = dict[str, "_Trie"]
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), rf"\1 {MASK}"),
    (re.compile(r"(?i)\b((?:sk|pk|rk)-(?:ant-|proj-)?)[A-Za-z0-9_\-]{6,}"), rf"\1{MASK}"),
    (re.compile(r"(?i)((?:x-api-key|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:[A-Za-z]+\s+)?[^\s\"',;}]+"), rf"\1{MASK}"),
)


def mask_secret(secret: str) -> str:
    """How a configured secret is shown (``ailb config check``): masked, with its last four characters when it
    is long enough for them not to give it away."""
    if not secret:
        return ""
    return MASK + secret[-4:] if len(secret) >= 12 else MASK


def redact_url(url: str) -> str:
    """``url`` without credentials a user may have put in it (``user:pass@``, the query string)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "", ""))


def redact_patterns(text: str) -> str:
    """``text`` with everything shaped like a credential masked (no configured secrets needed)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretSet:
    """An immutable set of configured secrets with their matchers, built once per configuration.

    Matching ignores case. ``in_bytes`` looks for the secrets in raw bytes (ASCII casing); ``mask`` and
    ``in_text`` work on decoded text; ``mask_escaped`` also finds secrets written with JSON escapes.
    """

    __slots__ = ("_ascii_few", "_bytes", "_escaped", "_few", "_prefixes", "_text", "empty", "longest", "quoteless")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        lowered = sorted({s.lower() for s in secrets if len(s) >= MIN_SECRET_LENGTH})
        self.empty = not lowered
        self.longest = max((len(s) for s in lowered), default=0)
        self.quoteless = not any(char in secret for secret in lowered for char in '"\\\n\r')
        few_ascii = len(lowered) <= _FEW_SECRETS and all(secret.isascii() for secret in lowered)
        self._ascii_few = tuple(lowered) if few_ascii else None
        self._text = _compile(lowered, re.escape, re.IGNORECASE)
        self._escaped = _compile(lowered, _escape_aware, re.IGNORECASE)
        encoded = [s.encode() for s in lowered]
        self._few = tuple(encoded) if len(encoded) <= _FEW_SECRETS else None
        latin = [s.decode("latin-1") for s in encoded]
        self._bytes = re.compile(_trie_pattern(latin, re.escape).encode("latin-1")) if latin else None
        prefixes: dict[str, set[str]] = {}
        for secret in lowered:
            for length in range(1, len(secret)):
                prefixes.setdefault(secret[length - 1], set()).add(secret[:length])
        self._prefixes = {char: tuple(sorted(found, key=len)) for char, found in prefixes.items()}

    def in_bytes(self, data: bytes) -> bool:
        """Whether ``data`` holds a secret as plain bytes, in any ASCII casing (escapes are not decoded)."""
        if self._few is not None:
            lowered = data.lower()
            for secret in self._few:
                if secret in lowered:
                    return True
            return False
        return self._bytes is not None and self._bytes.search(data.lower()) is not None

    def in_text(self, text: str) -> bool:
        if self._ascii_few is not None and text.isascii():  # ASCII against ASCII: casing is ASCII casing
            lowered = text.lower()
            for secret in self._ascii_few:
                if secret in lowered:
                    return True
            return False
        return self._text is not None and self._text.search(text) is not None

    def mask(self, text: str) -> str:
        return self._text.sub(MASK, text) if self._text is not None else text

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._text.finditer(text)] if self._text is not None else []

    def mask_escaped(self, text: str) -> str:
        return self._escaped.sub(MASK, text) if self._escaped is not None else text

    def ends_with_prefix(self, text: str) -> bool:
        """Whether ``text`` ends with a proper beginning of a secret (so the next piece may complete it)."""
        if not text:
            return False
        candidates = self._prefixes.get(text[-1].lower())
        if not candidates:
            return False
        return text[-self.longest :].lower().endswith(candidates)


class Redactor:
    """Masks secrets in text that leaves the process; ``set_secrets`` re-arms it after a configuration reload
    (in one assignment, so a reader never sees half of the change)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = SecretSet(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        self.secrets = SecretSet(secrets)

    def __call__(self, text: str) -> str:
        return redact_patterns(self.secrets.mask_escaped(text))

    def tree(self, value: Any, depth: int = 0) -> Any:
        """``value`` (dicts, lists, scalars) with every string in it redacted on its own, keys included, and any
        other object as its redacted text: for structured output (JSON log lines, span attributes), which stays
        valid whatever a mask replaces, where redacting the serialised text could cut through its quoting."""
        if isinstance(value, str):
            return self(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth < MAX_TREE_DEPTH:
            if isinstance(value, dict):
                return {self(str(k)): self.tree(v, depth + 1) for k, v in value.items()}
            if isinstance(value, list | tuple | set | frozenset):
                return [self.tree(v, depth + 1) for v in value]
        return self(str(value))


def _compile(words: list[str], atom: Callable[[str], str], flags: int) -> re.Pattern[str] | None:
    return re.compile(_trie_pattern(words, atom), flags) if words else None


def _trie_pattern(words: list[str], atom: Callable[[str], str]) -> str:
    """One regular expression matching any of ``words``, as a trie: each position is tried against the first
    characters once, not once per word, so the cost hardly grows with the number of secrets."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _branch(trie, atom)


def _branch(node: _Trie, atom: Callable[[str], str]) -> str:
    # A secret that is a prefix of another ends here too; the longer alternatives come first, so the whole of
    # the longer one is masked when both match.
    alternatives = [atom(char) + _branch(child, atom) for char, child in sorted(node.items()) if char]
    if "" in node:
        alternatives.append("")
    if len(alternatives) == 1:
        return alternatives[0]
    return "(?:" + "|".join(alternatives) + ")"


def _escape_aware(char: str) -> str:
    """``char`` as itself or as a JSON escape (``\\u0073`` for ``s``; ``\\/`` for ``/``), in either casing."""
    options = [re.escape(char)]
    for variant in sorted({char.lower(), char.upper()}):
        if len(variant) == 1 and ord(variant) < 0x10000:
            options.append(re.escape(f"\\u{ord(variant):04x}"))
    if char == "/":
        options.append(re.escape("\\/"))
    return "(?:" + "|".join(options) + ")"
