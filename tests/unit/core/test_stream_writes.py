"""How a streamed chat answer is written to the client's socket (the ASGI app called in process, in front of the
wire-level OpenAI fake on loopback): frames go out as they come, and once the upstream has said its last, what is
left goes out with the end of the response in one write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from ailb.contract import SessionId
from ailb.http.app import HotPath
from ailb.memory.inmemory import InMemoryTurnStore
from ailb.memory.service import MemoryService
from ailb.settings import MemoryConfig
from tests.asgi_driver import gateway_in_front_of, sent_messages
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.script import Fault
from tests.integration.otlp_receiver import OtlpHttpReceiver, ReceivedSpan
from tests.unit.word_embedder import WordEmbedder

QUESTION = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
DONE = b"data: [DONE]\n\n"


@asynccontextmanager
async def gateway_app(fake: OpenAIFake) -> AsyncIterator[HotPath]:
    async with gateway_in_front_of(fake) as (_, app):
        yield app


async def body_messages(
    app: HotPath, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> list[dict[str, Any]]:
    """The ``http.response.body`` messages the app sends for one request (each one socket write in uvicorn)."""
    sent = await sent_messages(app, "/v1/chat/completions", body, headers)
    assert sent[0]["status"] == 200
    return [message for message in sent if message["type"] == "http.response.body"]


def contents(body: bytes) -> str:
    text = ""
    for event in body.split(b"\n\n"):
        if event.startswith(b"data: {"):
            for choice in orjson.loads(event[6:])["choices"]:
                text += choice["delta"].get("content") or ""
    return text


async def test_the_rest_of_an_answer_the_upstream_finished_goes_out_with_the_end() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.reply = "one two three four"
        messages = await body_messages(app, QUESTION)
    *before, last = messages
    assert all(m["more_body"] for m in before) and last["more_body"] is False
    assert last["body"].endswith(DONE) and len(last["body"]) > len(DONE)  # frames and [DONE] in the last write
    assert contents(b"".join(m["body"] for m in messages)) == "one two three four"


async def test_frames_of_a_paced_answer_are_not_held_for_the_end() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.reply = "one two three four"
        fake.stream_chunk_delay = 0.05
        messages = await body_messages(app, QUESTION)
    assert "one" in contents(messages[0]["body"]) and messages[0]["more_body"] is True
    assert messages[-1]["body"].endswith(DONE) and messages[-1]["more_body"] is False
    assert contents(b"".join(m["body"] for m in messages)) == "one two three four"


async def test_a_failure_after_the_first_content_is_the_last_write() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_app(fake) as app:
        fake.reply = "one two three four"
        fake.fail_next(Fault.error_event(after_chunks=2))
        messages = await body_messages(app, QUESTION)
    last = messages[-1]
    assert last["more_body"] is False and last["body"].startswith(b"event: error\ndata: ")
    assert DONE not in b"".join(m["body"] for m in messages)


METERED_KEY = "team-metered-secret-0001"


async def test_a_metered_keys_answer_goes_out_with_the_end_too(tmp_path: Path) -> None:
    config = tmp_path / "ailb.yaml"
    keys = f"client_keys:\n  {METERED_KEY}:\n    name: team\n    rpm: 600\n    tpm: 100000\n"
    config.write_text("settings:\n  spend_path: none\n" + keys)
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_in_front_of(fake, str(config)) as (gateway, app):
        fake.reply = "one two three four"
        messages = await body_messages(app, QUESTION, [(b"authorization", b"Bearer " + METERED_KEY.encode())])
        governor = gateway.runtime.governor
        await governor.drain()
        used = await governor.usage(gateway.runtime.keys.identify({"authorization": f"Bearer {METERED_KEY}"}))
    *before, last = messages
    assert all(m["more_body"] for m in before) and last["more_body"] is False
    assert last["body"].endswith(DONE) and len(last["body"]) > len(DONE)  # frames and [DONE] in the last write
    assert contents(b"".join(m["body"] for m in messages)) == "one two three four"
    assert used.requests == 1 and used.completion_tokens == 4  # what the upstream reported, settled once


async def test_an_answer_to_remember_goes_out_with_the_end_too() -> None:
    memory = MemoryService(MemoryConfig(), InMemoryTurnStore(), WordEmbedder(), write_linger=0, write_retries=())
    await memory.start()
    try:
        async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_in_front_of(fake) as (gateway, app):
            gateway.runtime.service.memory = memory  # the gateway's own is off: one on the in-memory store
            fake.reply = "one two three four"
            messages = await body_messages(app, QUESTION, [(b"x-session-id", b"chat-1")])
            await memory.flush()
            turns = await memory.list_turns("default", SessionId.check("chat-1"))
    finally:
        await memory.aclose(flush_seconds=5)
    *before, last = messages
    assert all(m["more_body"] for m in before) and last["more_body"] is False
    assert last["body"].endswith(DONE) and len(last["body"]) > len(DONE)  # frames and [DONE] in the last write
    assert [(turn["user"], turn["assistant"]) for turn in turns] == [("hi", "one two three four")]


async def traced_stream(fake: OpenAIFake) -> tuple[list[dict[str, Any]], ReceivedSpan]:
    """The body messages of one streamed request with tracing on, and its server span."""
    with OtlpHttpReceiver() as receiver:
        traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
        async with gateway_in_front_of(fake, **traced) as (_, app):
            messages = await body_messages(app, QUESTION)
        spans = await asyncio.to_thread(receiver.wait_for, lambda got: any(s.kind == "server" for s in got))
    [server] = [span for span in spans if span.kind == "server"]
    return messages, server


async def test_a_traced_answer_goes_out_with_the_end_too_and_its_span_says_what_it_said() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake:
        fake.reply = "one two three four"
        messages, server = await traced_stream(fake)
    *before, last = messages
    assert all(m["more_body"] for m in before) and last["more_body"] is False
    assert last["body"].endswith(DONE) and len(last["body"]) > len(DONE)  # frames and [DONE] in the last write
    assert server.attributes["gen_ai.usage.output_tokens"] == 4
    assert server.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert server.status == "unset"


async def test_a_traced_stream_failing_after_its_first_content_has_an_error_span() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake:
        fake.reply = "one two three four"
        fake.fail_next(Fault.error_event(after_chunks=2))
        messages, server = await traced_stream(fake)
    assert messages[-1]["body"].startswith(b"event: error\ndata: ") and messages[-1]["more_body"] is False
    assert server.status == "error" and server.attributes["error.type"]
