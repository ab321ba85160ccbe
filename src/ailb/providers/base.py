"""The provider contract: every upstream kind (OpenAI-compatible, Anthropic, Ollama) implements this.

Each vendor folder has the same files: pure ``request.py`` (canonical OpenAI-shaped request → wire),
``response.py`` (answers and error answers → canonical), ``stream.py`` (a state machine: stream frames →
``chat.completion.chunk`` frames) and the I/O ``adapter.py``, which moves bytes through the one transport
(``transport.py``, over the lean HTTP/1.1 client in ``http1.py``), streams through the shared ``relay.py``,
scrubs configured secrets from answers (``scrub.py``) and raises only ``ailb.errors.UpstreamError`` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from ailb.contract import Completion, StreamChunk
from ailb.settings import DeploymentConfig


class Provider(Protocol):
    config: DeploymentConfig

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        """Answer ``body`` (an OpenAI chat request) with upstream model ``model`` in one piece."""
        ...

    def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        """Answer ``body`` as OpenAI ``chat.completion.chunk`` SSE frames (a request it cannot translate may
        raise ``InvalidRequestError`` at once, before any iteration).

        Usage is always requested upstream (it feeds stats and cost) but the usage-only chunk gets an empty
        ``frame`` unless ``include_usage``. The iterator ends after the final chunk; the ``data: [DONE]``
        terminator is written by the HTTP layer. Closing the iterator early cancels the upstream request.
        """
        ...

    async def list_models(self) -> list[str]:
        """The models the upstream says it serves (a call that spends no tokens)."""
        ...

    async def check_health(self) -> None:
        """Raise ``UpstreamError`` unless the upstream answers a token-free request."""
        ...

    async def aclose(self) -> None: ...
