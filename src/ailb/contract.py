"""The internal contract beyond the canonical chat call (``ailb.types``).

Every ingress surface (chat completions, Responses, Messages, legacy completions) becomes a ``ChatCall`` whose
body is the canonical (OpenAI chat) request; the router sends it to one deployment after another. Two things do
not fit that shape, and are said here:

- ``Egress``: how a call reaches one deployment when it is not the plain canonical call. A surface that can
  hand its own wire format to some providers (Anthropic Messages to an Anthropic deployment, passed through)
  sets ``ChatCall.egress``; the router asks it, per attempt, for the answer in that surface's own shape.
  Without one, the provider answers the canonical body.
- Embeddings: an ``EmbeddingCall`` in, an ``EmbeddingResult`` out, from a provider with an embeddings endpoint
  (``EmbeddingsEgress``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ailb.types import ChatCall, Completion, StreamChunk

if TYPE_CHECKING:
    from ailb.providers.base import Provider


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
