"""Streams: read up to the first content chunk (failover is still possible), then relay the rest.

Once the first content chunk is handed to the client the stream is committed to its deployment: a later
upstream failure raises ``UpstreamError`` from the iterator (the HTTP layer then writes an SSE error event
and no ``[DONE]``). Closing the iterator early closes the provider's iterator, which cancels the upstream
request; that is the client's choice, not the deployment's failure.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable

from mypy_extensions import mypyc_attr

from ailb.contract import ChatCall, StreamChunk, Usage
from ailb.errors import UpstreamError, UpstreamProtocolError
from ailb.routing.attempts import Attempt, AttemptRecorder
from ailb.routing.deployment import Candidate

log = logging.getLogger("ailb.routing")


async def read_until_content(
    open_upstream: Callable[[ChatCall, Candidate], AsyncIterator[StreamChunk]], call: ChatCall, pick: Candidate
) -> tuple[AsyncIterator[StreamChunk], list[StreamChunk], bool]:
    """The pick's stream opened and read up to its first content (held back, so a failure before it still fails
    over): the stream, the chunks up to and including the first with content, and whether the stream already
    ended. A stream that fails before it is closed."""
    upstream = open_upstream(call, pick)
    buffered: list[StreamChunk] = []
    try:
        while True:
            try:
                chunk = await anext(upstream)
            except StopAsyncIteration:
                return upstream, buffered, True
            buffered.append(chunk)
            if chunk.has_content:
                return upstream, buffered, False
    except BaseException:
        await close_quietly(upstream)
        raise


async def close_quietly(chunks: AsyncIterator[StreamChunk]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is None:
        return
    try:
        await close()
    except Exception as exc:  # the stream is being abandoned; its close failing changes nothing
        log.debug("closing an upstream stream failed: %r", exc)


def unexpected(error: Exception, deployment: str) -> UpstreamError:
    log.error("deployment %s raised %r", deployment, error, exc_info=error)
    return UpstreamProtocolError(f"Deployment '{deployment}' failed: {type(error).__name__}.", deployment=deployment)


class RelayedChunks:
    """The buffered chunks, then the rest of the upstream stream; records the attempt when it ends."""

    def __init__(
        self,
        recorder: AttemptRecorder,
        attempt: Attempt,
        upstream: AsyncIterator[StreamChunk],
        buffered: list[StreamChunk],
        ended: bool,
    ) -> None:
        self._recorder = recorder
        self._attempt = attempt
        self._upstream = upstream
        self._pending = deque(buffered)
        self._ended = ended
        self._upstream_over = ended  # the upstream ended by itself: nothing left to close
        self._done = False
        self._usage: Usage | None = None
        self._upstream_ready: Callable[[], list[StreamChunk]] | None = getattr(upstream, "ready", None)

    def __aiter__(self) -> RelayedChunks:
        return self

    async def __anext__(self) -> StreamChunk:
        if self._pending:
            return self._seen(self._pending.popleft())
        if self._done:
            raise StopAsyncIteration
        if self._ended:
            self._finish()
            raise StopAsyncIteration
        try:
            chunk = await anext(self._upstream)
        except StopAsyncIteration:
            self._upstream_over = True
            self._finish()
            raise
        except asyncio.CancelledError:
            await self.aclose()
            raise
        except UpstreamError as failure:
            self._fail(failure)
            raise
        except Exception as exc:
            error = unexpected(exc, self._attempt.deployment.name)
            self._fail(error)
            raise error from exc
        return self._seen(chunk)

    def ready(self) -> list[StreamChunk]:
        """The chunks at hand that the next ``__anext__`` calls would return without waiting for the upstream."""
        taken = list(self._pending)
        self._pending.clear()
        if self._upstream_ready is not None and not self._done:
            taken += self._upstream_ready()
        for chunk in taken:
            self._seen(chunk)
        return taken

    def at_end(self) -> bool:
        """Whether the upstream has said its last: the chunks still to come, and the end, come without waiting
        (an upstream that cannot tell answers False)."""
        return self._done or self._ended or getattr(self._upstream, "finished", False) is True

    async def aclose(self) -> None:
        """Stop relaying: closes the provider's iterator (cancelling the upstream request) if still open."""
        self._pending.clear()
        if not self._done:
            self._done = True
            self._recorder.succeeded(self._attempt, self._usage, whole=False)
        if not self._upstream_over:
            await close_quietly(self._upstream)

    def __del__(self) -> None:
        # Dropped without aclose(): free the deployment's slot; the event loop finalizes the provider's iterator.
        if not self._done:
            self._done = True
            self._recorder.abandoned(self._attempt)

    def _seen(self, chunk: StreamChunk) -> StreamChunk:
        if chunk.usage is not None:
            self._usage = chunk.usage
        return chunk

    def _finish(self) -> None:
        self._done = True
        self._recorder.succeeded(self._attempt, self._usage)

    def _fail(self, error: UpstreamError) -> None:
        self._done = True
        self._pending.clear()
        self._recorder.failed(self._attempt, error)


@mypyc_attr(allow_interpreted_subclasses=True)  # the layers (metering, memory, tracing) stay Python
class PassedChunks(ABC):
    """A routed stream's chunks passed on by a layer that notes them (metering, memory, tracing): every chunk is
    shown to ``_seen``, also those ``ready`` hands over, which keeps the answer's last usage and (``keep_text``)
    its text; the relay's ``ready``/``at_end`` stay visible to the writer (so what is at hand still goes out in one
    write, and the rest with the end)."""

    def __init__(self, chunks: AsyncIterator[StreamChunk], keep_text: bool = True) -> None:
        self._chunks = chunks
        self._ready: Callable[[], list[StreamChunk]] | None = getattr(chunks, "ready", None)
        self._at_end: Callable[[], bool] | None = getattr(chunks, "at_end", None)
        self._parts: list[str] | None = [] if keep_text else None
        self._usage: Usage | None = None

    def __aiter__(self) -> PassedChunks:
        return self

    @abstractmethod
    async def __anext__(self) -> StreamChunk: ...

    def _seen(self, chunk: StreamChunk) -> StreamChunk:
        if chunk.usage is not None:
            self._usage = chunk.usage
        if self._parts is not None and chunk.text:
            self._parts.append(chunk.text)
        return chunk

    def _text(self) -> str:
        return "".join(self._parts) if self._parts is not None else ""

    def ready(self) -> list[StreamChunk]:
        """The chunks at hand that the next ``__anext__`` calls would return without waiting (see
        ``RelayedChunks.ready``), noted as they pass."""
        taken = self._ready() if self._ready is not None else []
        for chunk in taken:
            self._seen(chunk)
        return taken

    def at_end(self) -> bool:
        """Whether the rest, and the end, come without waiting (see ``RelayedChunks.at_end``)."""
        return self._at_end is not None and self._at_end()

    async def aclose(self) -> None:
        await close_quietly(self._chunks)
