"""A client that goes away during a streamed chat request cancels the upstream call, whether it leaves while the
gateway waits for the stream's first content or while the answer is written; one watch serves both phases: the
server's disconnect callback (``ON_DISCONNECT``, as ``ailb serve`` offers) or else one watcher task (the ASGI app
called in process, in front of the wire-level OpenAI fake on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from ailb.http.app import HotPath
from ailb.http.sse import ON_DISCONNECT, ClientWatch
from tests.fakes.openai_fake import OpenAIFake
from tests.polling import eventually
from tests.unit.core.test_stream_writes import QUESTION, gateway_app


class Client:
    """One request's ASGI ``receive``/``send``: the body, then the connection stays until ``leave`` is set. With
    ``callbacks`` the scope offers the server's disconnect callback, which ``leave`` calls."""

    def __init__(self, callbacks: bool = False) -> None:
        self.leave = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.watchers: set[asyncio.Task[Any] | None] = set()  # the tasks that waited for the client to go
        self._body = [{"type": "http.request", "body": orjson.dumps(QUESTION), "more_body": False}]
        self.callbacks: list[Callable[[], None]] | None = [] if callbacks else None
        self.registered = 0

    def on_disconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        assert self.callbacks is not None
        self.registered += 1
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback) if self.callbacks and callback in self.callbacks else None

    def go(self) -> None:
        self.leave.set()
        for callback in list(self.callbacks or ()):
            callback()

    async def receive(self) -> dict[str, Any]:
        if self._body:
            return self._body.pop()
        self.watchers.add(asyncio.current_task())
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.leave.set()

    async def ask(self, app: HotPath) -> None:
        scope = {
            "type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"",
            "headers": [(b"content-type", b"application/json")], "http_version": "1.1", "scheme": "http",
            "root_path": "", "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000),
        }  # fmt: skip
        if self.callbacks is not None:
            scope["extensions"] = {ON_DISCONNECT: self.on_disconnect}
        await app(scope, self.receive, self.send)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


BOTH_WATCHES = pytest.mark.parametrize("callbacks", [False, True], ids=["watcher-task", "server-callback"])


def watched_once(client: Client) -> bool:
    """The one watch the request had: the server's callback, registered once and taken back (so no receive
    waited), or else one watcher task."""
    if client.callbacks is not None:
        return client.registered == 1 and not client.callbacks and not client.watchers
    return len(client.watchers) == 1


@BOTH_WATCHES
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
async def test_a_client_gone_before_the_first_content_cancels_the_upstream(callbacks: bool, stream: bool) -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.latency = 30  # the upstream keeps the answer (a stream's first content) back
        client = Client(callbacks)
        client._body[0]["body"] = orjson.dumps({**QUESTION, "stream": stream})
        asking = asyncio.ensure_future(client.ask(app))
        await eventually(lambda: fake.in_flight > 0)
        client.go()
        await asyncio.wait_for(asking, 10)
        assert client.sent[0]["status"] == 499
        await eventually(lambda: fake.disconnects == 1)
        assert watched_once(client)


@BOTH_WATCHES
async def test_a_client_gone_while_the_answer_is_written_cancels_the_upstream(callbacks: bool) -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.reply = " ".join(f"w{i}" for i in range(200))
        fake.stream_chunk_delay = 0.05
        client = Client(callbacks)
        asking = asyncio.ensure_future(client.ask(app))
        await eventually(lambda: any(m.get("body") for m in client.sent))
        client.go()
        await asyncio.wait_for(asking, 10)
        assert client.sent[0]["status"] == 200 and b"[DONE]" not in client.body()
        await eventually(lambda: fake.disconnects == 1)
        assert watched_once(client)


@BOTH_WATCHES
async def test_one_watch_serves_the_wait_for_content_and_the_writing(callbacks: bool) -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.reply = "one two three"
        fake.latency = 0.1  # the watcher waits for the client before the first content comes
        fake.stream_chunk_delay = 0.05  # and while the answer is written
        client = Client(callbacks)
        await client.ask(app)
    assert client.body().endswith(b"data: [DONE]\n\n")
    assert watched_once(client)


async def test_a_watch_armed_after_the_client_went_cancels_only_a_wait_while_armed() -> None:
    async def gone_client() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    watch = ClientWatch(gone_client)
    await asyncio.sleep(0)  # the watcher sees the client gone while nothing is armed
    assert watch.gone and not watch.cancelled
    watch.arm()
    assert not watch.disarm()  # armed and disarmed without waiting in between: nothing to cancel
    await asyncio.sleep(0.01)  # and no cancellation turns up later
    watch.arm()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(5)
    assert watch.disarm()
    watch.close()
