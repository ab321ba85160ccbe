"""What a fake answers: scripted replies, scripted faults, and the record of what it received."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["status", "hang", "drop", "drop_mid_stream", "error_event", "malformed"]
ErrorBody = bytes | str | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer.

    ``tool_calls`` are ``(function name, arguments as a JSON string)``; they are answered only when the request
    offered tools (like a real model, which cannot call a tool it was not given). ``finish`` uses OpenAI's
    vocabulary ("stop", "length", "tool_calls", "content_filter") and is translated per provider; any other value
    is sent as is. Token counts default to the words of the prompt and the pieces of the answer. ``pieces``, when
    given, are the exact stream pieces (the whole answer is their concatenation), e.g. to split a word across
    two chunks.

    ``reasoning`` is the model's reasoning, sent only where the request asks for it the provider's way (Anthropic:
    ``thinking`` enabled, with a signature; Ollama: ``think``; OpenAI-compatible: always, as DeepSeek and vLLM send
    ``reasoning_content``); ``redacted_reasoning`` is the opaque data of an Anthropic ``redacted_thinking`` block.
    ``cache_read_tokens`` / ``cache_write_tokens`` are reported as prompt-cache reads and writes: on top of
    ``prompt_tokens`` by Anthropic (which counts them apart), within it by OpenAI (``cached_tokens``).
    """

    text: str = ""
    pieces: Sequence[str] | None = None
    tool_calls: Sequence[tuple[str, str]] = ()
    finish: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning: str = ""
    redacted_reasoning: str = ""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted failure of one chat request. Build with the class methods."""

    kind: FaultKind
    http_status: int = 0
    body: ErrorBody | None = None
    headers: Mapping[str, str] | None = None
    seconds: float = 0.0
    after_chunks: int = 0
    quote_key: bool = False

    @classmethod
    def status(
        cls,
        status: int,
        body: ErrorBody | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        quote_key: bool = False,
    ) -> Fault:
        """Answer with HTTP ``status``; ``body=None`` sends the provider's own error shape, whose message quotes
        the credential the request carried when ``quote_key`` (as a careless or hostile upstream might)."""
        return cls("status", http_status=status, body=body, headers=headers, quote_key=quote_key)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Accept the request and send nothing for ``seconds`` (then answer normally)."""
        return cls("hang", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending any reply."""
        return cls("drop")

    @classmethod
    def drop_mid_stream(cls, after_chunks: int = 2) -> Fault:
        """Stream ``after_chunks`` content pieces, then close the connection (a plain request is dropped)."""
        return cls("drop_mid_stream", after_chunks=after_chunks)

    @classmethod
    def error_event(cls, after_chunks: int = 1, *, quote_key: bool = False) -> Fault:
        """Stream ``after_chunks`` content pieces, then the provider's in-stream error (a plain request gets 500);
        with ``quote_key`` its message quotes the credential the request carried."""
        return cls("error_event", after_chunks=after_chunks, quote_key=quote_key)

    @classmethod
    def malformed(cls, after_chunks: int = 1, *, quote_key: bool = False) -> Fault:
        """Stream ``after_chunks`` content pieces, then a frame that is not JSON (a plain request gets a 200 whose
        body is not JSON); with ``quote_key`` the garbage quotes the credential the request carried."""
        return cls("malformed", after_chunks=after_chunks, quote_key=quote_key)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive
    json: Any  # the parsed body, or None when there was none or it was not JSON
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """A reply resolved against one request: what the fake will actually send."""

    pieces: list[str]
    tool_calls: list[tuple[str, str]]
    finish: str
    prompt_tokens: int
    completion_tokens: int
    reasoning: str = ""
    redacted_reasoning: str = ""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def resolve_answer(reply: Reply, *, tools_offered: bool, token_limit: int | None, prompt_words: int) -> Answer:
    pieces = list(reply.pieces) if reply.pieces is not None else text_pieces(reply.text)
    tool_calls = list(reply.tool_calls) if tools_offered else []
    finish = reply.finish
    if finish is None and token_limit is not None and not tool_calls and len(pieces) > token_limit:
        pieces = pieces[:token_limit]
        finish = "length"
    if finish is None:
        finish = "tool_calls" if tool_calls else "stop"
    fragments = sum(len(argument_fragments(arguments)) for _, arguments in tool_calls)
    return Answer(
        pieces=pieces,
        tool_calls=tool_calls,
        finish=finish,
        prompt_tokens=reply.prompt_tokens if reply.prompt_tokens is not None else max(1, prompt_words),
        completion_tokens=(
            reply.completion_tokens if reply.completion_tokens is not None else max(1, len(pieces) + fragments)
        ),
        reasoning=reply.reasoning,
        redacted_reasoning=reply.redacted_reasoning,
        cache_read_tokens=reply.cache_read_tokens,
        cache_write_tokens=reply.cache_write_tokens,
    )


_PIECE = re.compile(r"\s*\S+|\s+")


def text_pieces(text: str) -> list[str]:
    """Split text the way streams send it: one word per piece, each with its leading whitespace."""
    return _PIECE.findall(text)


def argument_fragments(arguments: str, size: int = 8) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def count_words(value: Any) -> int:
    """Words in message text: strings, lists of them, and the ``content``/``text`` of dicts."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(count_words(value[key]) for key in ("content", "text") if key in value)
    return 0


def fake_embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic vector for ``text``; every value is exact in float32, so base64 round-trips."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend((byte - 128) / 128 for byte in digest)
        block += 1
    return values[:dimensions]
