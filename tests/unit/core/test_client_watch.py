"""A client that goes away during a streamed chat request cancels the upstream call, whether it leaves while the
gateway waits for the stream's first content or while the answer is written; one watcher task serves both phases
(the ASGI app called in process, in front of the wire-level OpenAI fake on loopback)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from ailb.http.app import HotPath
from ailb.http.sse import ClientWatch
from tests.fakes.openai_fake import OpenAIFake
from tests.polling import eventually
from tests.unit.core.test_stream_writes import QUESTION, gateway_app


class Client:
    """One request's ASGI ``receive``/``send``: the body, then the connection stays until ``leave`` is set."""

    def __init__(self) -> None:
        self.leave = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.watchers: set[asyncio.Task[Any] | None] = set()  # the tasks that waited for the client to go
        self._body = [{"type": "http.request", "body": orjson.dumps(QUESTION), "more_body": False}]

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
        await app(scope, self.receive, self.send)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_a_client_gone_before_the_first_content_cancels_the_upstream() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.latency = 30  # the upstream keeps the stream's first content back
        client = Client()
        asking = asyncio.ensure_future(client.ask(app))
        await eventually(lambda: fake.in_flight > 0)
        client.leave.set()
        await asyncio.wait_for(asking, 10)
        assert client.sent[0]["status"] == 499
        await eventually(lambda: fake.disconnects == 1)


async def test_a_client_gone_while_the_answer_is_written_cancels_the_upstream() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.reply = " ".join(f"w{i}" for i in range(200))
        fake.stream_chunk_delay = 0.05
        client = Client()
        asking = asyncio.ensure_future(client.ask(app))
        await eventually(lambda: any(m.get("body") for m in client.sent))
        client.leave.set()
        await asyncio.wait_for(asking, 10)
        assert client.sent[0]["status"] == 200 and b"[DONE]" not in client.body()
        await eventually(lambda: fake.disconnects == 1)


async def test_one_watcher_task_serves_the_wait_for_content_and_the_writing() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.reply = "one two three"
        fake.latency = 0.1  # the watcher waits for the client before the first content comes
        fake.stream_chunk_delay = 0.05  # and while the answer is written
        client = Client()
        await client.ask(app)
    assert client.body().endswith(b"data: [DONE]\n\n")
    assert len(client.watchers) == 1


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
