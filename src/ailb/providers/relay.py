"""The one stream loop every adapter shares.

Open the upstream stream, cut it into frames (``framing``: SSE or NDJSON), feed each frame to the vendor's pure
state machine, scrub the configured secrets from what comes out, and tell an answer the upstream finished from
a stream that merely stopped (an error, never a clean end). Closing the iterator early cancels the upstream
call.

The chunks of one piece of the upstream body arrive together and leave as one chunk (their frames, texts and
what they say joined): every layer after the relay (routing, memory, metering, the SSE writer) handles and writes
one chunk per upstream read instead of one per event. ``Relay.ready`` hands over chunks not taken yet without
waiting (after a failover the buffered ones), so a writer can still send them in one write.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Protocol

from ailb.contract import StreamChunk
from ailb.providers.errors import early_end
from ailb.providers.framing import Framing, Splitter
from ailb.providers.scrub import StreamScrubber
from ailb.providers.transport import Transport
from ailb.redaction import SecretSet


class StreamState(Protocol):
    """A vendor's translation state for one streamed answer (e.g. ``AnthropicStream``)."""

    @property
    def finished(self) -> bool:
        """The upstream said the answer is over: stop reading."""
        ...

    @property
    def complete(self) -> bool:
        """Whether the byte stream ending now would be a clean end of the answer."""
        ...

    def feed(self, data: bytes) -> list[StreamChunk]:
        """The chunks one frame's payload translates to; raises ``UpstreamError`` for an in-stream error."""
        ...


FeedRead = Callable[[list[bytes], Callable[[StreamChunk, bytes], bool]], "list[StreamChunk] | None"]
"""A state's optional ``feed_read(payloads, passes)``: one read's frames as the one chunk that feeding them one by
one, scrubbing and ``joined`` would give, when ``passes`` (the scrubber's, given the chunk and the bytes of its frame
it must search: ``StreamScrubber.passes``) takes it as it is; else None and the state unchanged (the relay then feeds
them one by one). ``OpenAIStream`` has one."""


class Relay:
    """The answer's chunks, scrubbed of the secrets; ``aclose()`` cancels the upstream call."""

    __slots__ = ("_batches", "_ready", "_state")

    def __init__(
        self, transport: Transport, path: str, payload: bytes, framing: Framing, state: StreamState, secrets: SecretSet
    ) -> None:
        self._batches = _batches(transport, path, payload, framing, state, secrets)
        self._ready: deque[StreamChunk] = deque()
        self._state = state

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> StreamChunk:
        ready = self._ready
        if ready:
            return ready.popleft()
        batch = await anext(self._batches)  # never empty; usually one chunk (a read's)
        if len(batch) > 1:
            ready.extend(batch[1:])
        return batch[0]

    @property
    def finished(self) -> bool:
        """The upstream said the answer is over: what is left (chunks not taken yet, a held tail, the end) comes
        without waiting for it."""
        return self._state.finished

    def ready(self) -> list[StreamChunk]:
        """The chunks already read from the upstream and not taken yet (none is waited for)."""
        taken = list(self._ready)
        self._ready.clear()
        return taken

    async def aclose(self) -> None:
        self._ready.clear()
        await self._batches.aclose()


def relay(
    transport: Transport, path: str, payload: bytes, framing: Framing, state: StreamState, secrets: SecretSet
) -> Relay:
    """Stream ``payload`` to ``path``; iterate the answer's chunks, scrubbed of ``secrets``."""
    return Relay(transport, path, payload, framing, state, secrets)


async def _batches(
    transport: Transport, path: str, payload: bytes, framing: Framing, state: StreamState, secrets: SecretSet
) -> AsyncGenerator[list[StreamChunk], None]:
    """The chunks of each piece of the upstream body, as a list (empty lists are skipped)."""
    name = transport.name
    scrubber = StreamScrubber(secrets)
    splitter = framing(name)
    feed_read: FeedRead | None = getattr(state, "feed_read", None)
    async with transport.open_stream(path, payload) as pieces, aclosing(pieces) as reader:
        async for piece in reader:
            datas = splitter.feed(piece)
            read = feed_read(datas, scrubber.passes) if feed_read is not None else None
            if read is not None:  # the common case: the read's chunk, already joined and needing no scrubbing
                if read:
                    yield read
                if state.finished:
                    break
                continue
            translated: list[StreamChunk] = []
            try:
                _translate(datas, state, translated)
            except Exception:
                batch = scrubber.feed(translated)
                if batch:  # what came before the failure in the same piece still reaches the client first
                    yield batch
                raise
            batch = scrubber.feed(translated)
            if batch:
                yield joined(batch)
            if state.finished:
                break
        else:
            batch = _at_the_end(splitter, state, scrubber)
            if batch:
                yield batch
        if state.finished:
            _answered(pieces)
    if not state.complete:
        raise early_end(name)
    tail = scrubber.flush()
    if tail:
        yield joined(tail)


def _at_the_end(splitter: Splitter, state: StreamState, scrubber: StreamScrubber) -> list[StreamChunk]:
    """What the body's end completed (a last frame left unterminated), translated and scrubbed, as one batch."""
    translated: list[StreamChunk] = []
    _translate(splitter.end(), state, translated)
    batch = scrubber.feed(translated)
    return joined(batch) if batch else []


def _translate(datas: list[bytes], state: StreamState, into: list[StreamChunk]) -> None:
    """Feed ``datas`` to ``state`` one at a time, up to the answer's end, adding what they translate to ``into``
    (which holds what came before a failure when one raises)."""
    for data in datas:
        into += state.feed(data)
        if state.finished:
            return


def _answered(pieces: object) -> None:
    """Tell the upstream stream the answer is over (``OpenStream.answered``: its connection may then be kept)."""
    answered: Callable[[], None] | None = getattr(pieces, "answered", None)
    if answered is not None:
        answered()


def joined(chunks: list[StreamChunk]) -> list[StreamChunk]:
    """The chunks of one read as one: frames and texts in order, content if any had it, the last usage and
    finish reason."""
    if len(chunks) == 1:
        return chunks
    usage = finish_reason = None
    has_content = False
    for chunk in chunks:
        has_content = has_content or chunk.has_content
        usage = chunk.usage or usage
        finish_reason = chunk.finish_reason or finish_reason
    frame = b"".join([chunk.frame for chunk in chunks])
    text = "".join([chunk.text for chunk in chunks])
    return [StreamChunk(frame=frame, text=text, has_content=has_content, usage=usage, finish_reason=finish_reason)]
