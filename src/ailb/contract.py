"""The internal contract: what every ingress surface translates into and out of, and what routing and the
providers work on. No wire schema lives here (each surface's is in ``ailb.ingress.<surface>.schema``).

- ``ChatCall``: one validated chat request, frozen. Its ``body`` is the canonical request (the OpenAI chat form,
  as ``ailb.ingress.chat.schema`` checks it) without AILB's own fields. Memory and RAG do not change a call: they
  return a new one (``with_injected``). Every surface (chat completions, Responses, Messages, legacy completions)
  becomes one; the router sends it to one deployment after another.
- ``Completion`` (a whole answer) and ``StreamChunk`` (one piece of a streamed one), each with its ``Usage``.
- ``Egress``: how a call reaches one deployment when it is not the plain canonical call. A surface that can
  hand its own wire format to some providers (Anthropic Messages to an Anthropic deployment, passed through)
  sets ``ChatCall.egress``; the router asks it, per attempt, for the answer in that surface's own shape.
  Without one, the provider answers the canonical body.
- Embeddings: an ``EmbeddingCall`` in, an ``EmbeddingResult`` out, from a provider with an embeddings endpoint
  (``EmbeddingsEgress``).
- ``SessionId``: a session id checked once, where the request came in; memory takes it as it is.
- ``ModelInfo``: a model as ``/v1/models`` lists it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ailb.errors import InvalidRequestError

if TYPE_CHECKING:
    from ailb.providers.base import Provider

SESSION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
SESSION_ID_RULE = "session_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'."
_SESSION_ID = re.compile(SESSION_ID_PATTERN)


class SessionId(str):
    """A session id known to be valid: the whole text matches ``SESSION_ID_PATTERN`` (the pattern's ``$`` alone
    would also let a trailing newline through). Only ``SessionId.check`` makes one, so a request's id is checked
    once, where it comes in, and memory takes it as it is."""

    __slots__ = ()

    @classmethod
    def check(cls, text: str, *, code: str = "invalid_value", source: str = "") -> SessionId:
        """``text`` as a ``SessionId``; a 400 on ``session_id`` (``source``, e.g. a header name, leads the message)."""
        if isinstance(text, SessionId):
            return text
        if not _SESSION_ID.fullmatch(text):
            raise InvalidRequestError(source + SESSION_ID_RULE, param="session_id", code=code)
        return cls(text)

    @staticmethod
    def is_valid(text: str) -> bool:
        return isinstance(text, SessionId) or _SESSION_ID.fullmatch(text) is not None


@dataclass(slots=True)
class Usage:
    """Token counts of one answer. ``prompt_tokens`` is the whole input, cached or not; of it,
    ``cache_read_tokens`` were read from and ``cache_write_tokens`` written to the upstream's prompt cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cache_read_tokens or self.cache_write_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cache_read_tokens}
        return out

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One validated chat request as it flows through the gateway; never changed once made.

    ``body`` is the client's OpenAI request with AILB's fields removed, read-only (a ``Mapping``: the providers
    copy what they change); memory and RAG give a new call whose messages include what they add
    (``with_injected``). ``model`` is the public name the client asked for.
    """

    body: Mapping[str, Any]
    model: str
    stream: bool
    include_usage: bool
    tenant: str
    session_id: SessionId | None = None
    rag_collections: tuple[str, ...] = ()
    rag_top_k: int = 3
    strategy: str | None = None
    egress: Egress | None = None  # how another surface reaches a deployment (``ailb.contract``); None: canonical
    injected: tuple[dict[str, Any], ...] = ()  # the messages memory and RAG added to ``body``

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens") or self.body.get("max_tokens")
        return value if isinstance(value, int) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body["messages"]
        return messages

    def with_injected(self, added: Sequence[dict[str, Any]]) -> ChatCall:
        """A new call whose messages have ``added`` after the client's leading system and developer messages."""
        if not added:
            return self
        messages = self.messages
        split = 0
        while split < len(messages) and messages[split].get("role") in ("system", "developer"):
            split += 1
        body = {**self.body, "messages": [*messages[:split], *added, *messages[split:]]}
        return replace(self, body=body, injected=(*self.injected, *added))


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) answer: ``body`` is an OpenAI ``chat.completion`` dict; ``raw``, when set, is the
    upstream's own encoding of that same body, passed to the client as it is."""

    body: dict[str, Any]
    usage: Usage
    text: str
    raw: bytes | None = None


@dataclass(slots=True)
class StreamChunk:
    """One piece of a streamed answer: what one upstream read gave (the relay joins that read's events).

    ``frame`` is one or more complete SSE events (``data: {...}\\n\\n``) ready for the client, or empty when
    nothing must be shown (e.g. a usage-only chunk the client did not ask for); ``text`` is their joined text,
    ``usage`` and ``finish_reason`` the last ones seen. ``has_content`` marks the chunk that commits the stream to
    this deployment (content, refusal or tool-call deltas).
    """

    frame: bytes
    text: str = ""
    has_content: bool = False
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass(slots=True, frozen=True)
class ModelInfo:
    id: str
    owned_by: str
    created: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def message_text(content: Any) -> str:
    """The plain text of an OpenAI message ``content`` (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")


class Egress(Protocol):
    """Sends ``call`` to one deployment's ``provider`` as upstream ``model`` (the call's canonical body and what
    memory and RAG added to it are in ``call``). An egress that cannot express the call for this provider raises
    ``InvalidRequestError`` before sending anything: the router then tries another deployment of the model."""

    async def complete(self, provider: Provider, call: ChatCall, model: str) -> Completion: ...

    def stream(self, provider: Provider, call: ChatCall, model: str) -> AsyncIterator[StreamChunk]: ...


@dataclass(frozen=True, slots=True)
class EmbeddingCall:
    """One validated embeddings request: ``texts`` in order; ``dimensions`` when the client asked for fewer."""

    model: str
    texts: tuple[str, ...]
    tenant: str
    dimensions: int | None = None
    strategy: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """One vector per text, in order; ``prompt_tokens`` as the upstream reported it (0 when it did not)."""

    vectors: list[list[float]]
    prompt_tokens: int = 0


@runtime_checkable
class EmbeddingsEgress(Protocol):
    """A provider adapter with an embeddings endpoint (OpenAI-compatible ``/embeddings``, Ollama ``/api/embed``)."""

    async def create_embeddings(self, texts: Sequence[str], model: str, dimensions: int | None) -> EmbeddingResult: ...
