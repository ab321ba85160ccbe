"""The one stream loop every adapter shares.

Open the upstream stream, cut it into frames (``framing``: SSE or NDJSON), feed each frame to the vendor's pure
state machine, scrub the configured secrets from what comes out, and tell an answer the upstream finished from
a stream that merely stopped (an error, never a clean end). Closing the iterator early cancels the upstream
call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Protocol

from ailb.contract import StreamChunk
from ailb.providers.errors import early_end
from ailb.providers.framing import Framing
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


async def relay(
    transport: Transport, path: str, payload: bytes, framing: Framing, state: StreamState, secrets: SecretSet
) -> AsyncIterator[StreamChunk]:
    """Stream ``payload`` to ``path`` and yield the answer's chunks, scrubbed of ``secrets``."""
    name = transport.name
    scrubber = StreamScrubber(secrets)
    async with transport.open_stream(path, payload) as pieces, aclosing(framing(pieces, name)) as frames:
        async for data in frames:
            for chunk in scrubber.feed(state.feed(data)):
                yield chunk
            if state.finished:
                break
    if not state.complete:
        raise early_end(name)
    for chunk in scrubber.flush():
        yield chunk
