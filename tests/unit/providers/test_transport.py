"""The one mapping of socket, TLS and HTTP failures to ours."""

from __future__ import annotations

import asyncio

import pytest

from ailb.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamTimeoutError
from ailb.providers.http1 import Silence
from ailb.providers.transport import map_transport_errors


def test_socket_failures_become_upstream_errors() -> None:
    with pytest.raises(UpstreamConnectionError, match="'east' refused the connection") as refused:
        with map_transport_errors("east"):
            raise ConnectionRefusedError("connect call failed ('10.0.0.5', 443)")
    assert refused.value.deployment == "east" and isinstance(refused.value.__cause__, ConnectionRefusedError)
    with pytest.raises(UpstreamProtocolError, match="'east' failed: KeyError"):
        with map_transport_errors("east"):
            raise KeyError("x")


def test_silence_says_what_never_came_and_a_late_exchange_timed_out() -> None:
    with pytest.raises(UpstreamTimeoutError, match=r"'east' sent no first token within 0\.01s"):
        with map_transport_errors("east"):
            raise Silence("first token within 0.01s")
    with pytest.raises(UpstreamTimeoutError, match=r"^Deployment 'east' timed out\.$"):
        with map_transport_errors("east"):
            raise Silence(None)


async def test_cancellation_passes_through() -> None:
    async def work() -> None:
        with map_transport_errors("east"):
            await asyncio.sleep(5)

    task = asyncio.ensure_future(work())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
