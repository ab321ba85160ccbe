"""The Messages API translators, the Anthropic pass-through state machine and the scrubbing of its events."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from ailb.contract import ChatCall, Completion, StreamChunk, Usage
from ailb.errors import (
    AILBError,
    InvalidRequestError,
    NoDeploymentAvailableError,
    RateLimitedError,
    UpstreamError,
    UpstreamProtocolError,
)
from ailb.ingress.messages import errors
from ailb.ingress.messages.egress import native_payload
from ailb.ingress.messages.request import MessagesSpec, parse
from ailb.ingress.messages.response import message_from_completion
from ailb.ingress.messages.stream import MessageEvents
from ailb.providers.anthropic.passthrough import NativeStream
from ailb.providers.canonical import ChunkWriter
from ailb.providers.scrub import StreamScrubber
from ailb.redaction import SecretSet
from tests.unit.ingress.chunks import aiter_of, canonical_stream

BASE: dict[str, Any] = {"model": "m", "max_tokens": 100}


def translate(**body: Any) -> tuple[ChatCall, Any, MessagesSpec]:
    return parse({**BASE, **body}, "t", {})


def test_blocks_become_a_canonical_conversation() -> None:
    messages = [
        {"role": "user", "content": [
            {"type": "text", "text": "See"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JV"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Hm", "signature": "s1"},
            {"type": "text", "text": "Calling"},
            {"type": "tool_use", "id": "t1", "name": "look", "input": {"a": 1}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "boom"}],
             "is_error": True},
            {"type": "text", "text": "And now?"},
        ]},
    ]  # fmt: skip
    call, translation, _ = translate(
        system=[{"type": "text", "text": "Sys", "cache_control": {"type": "ephemeral"}}], messages=messages,
        stop_sequences=["X"], metadata={"user_id": "u"}, temperature=0.5,
        tools=[{"name": "look", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )  # fmt: skip
    assert translation.refusal is None
    body = call.body
    assert body["messages"][0] == {"role": "system", "content": "Sys"}
    assert body["messages"][1]["content"][1:] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JV"}},
    ]
    assistant = body["messages"][2]
    assert assistant["content"] == "Calling" and assistant["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Hm", "signature": "s1"}
    ]
    assert assistant["tool_calls"][0]["function"] == {"name": "look", "arguments": '{"a":1}'}
    assert body["messages"][3:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"},
        {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
    ]
    assert (body["stop"], body["user"], body["temperature"], body["max_completion_tokens"]) == (["X"], "u", 0.5, 100)
    assert body["tools"] == [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}]
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (2048, "low"), (4096, "medium"), (20000, "high")])
def test_a_thinking_budget_is_an_effort(budget: int, effort: str) -> None:
    call, _, spec = translate(
        messages=[{"role": "user", "content": "x"}], thinking={"type": "enabled", "budget_tokens": budget}
    )
    assert call.body["reasoning_effort"] == effort and spec.thinking


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"container": "c"}, "container"),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "search_result", "source": "s"}]}]},
            "messages[0].content[0].type",
        ),
        ({"system": [{"type": "image", "source": {}}]}, "system[0].type"),
        ({"something_new": True}, "something_new"),
    ],
)
def test_what_only_anthropic_takes_makes_the_others_unfit(extra: dict[str, Any], param: str) -> None:
    call, translation, _ = translate(**{"messages": [{"role": "user", "content": "hi there"}], **extra})
    assert isinstance(translation.refusal, InvalidRequestError) and translation.refusal.param == param
    assert call.body["messages"][-1]["content"] in ("hi there", "")  # the text, for memory and token counts
    assert translation.native == {**BASE, "messages": translation.native["messages"], **extra}


def test_bad_requests_are_refused_at_once() -> None:
    with pytest.raises(InvalidRequestError) as no_max:
        parse({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "t", {})
    assert "`max_tokens`" in no_max.value.message
    with pytest.raises(InvalidRequestError) as credential:
        translate(messages=[{"role": "user", "content": "x"}], api_key="sk-mine")
    assert credential.value.param == "api_key"


def test_the_native_request_keeps_the_clients_blocks() -> None:
    system = [{"type": "text", "text": "Sys", "cache_control": {"type": "ephemeral"}}]
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "from another provider", "signature": ""},
            {"type": "thinking", "thinking": "Claude's", "signature": "sig"}, {"type": "text", "text": "a"},
        ]},
        {"role": "user", "content": "q2"},
    ]  # fmt: skip
    call, translation, _ = translate(system=system, messages=messages, stream=True, session_id="s")
    call = call.with_injected([{"role": "system", "content": "<conversation_memory>x</conversation_memory>"}])
    sent = orjson.loads(native_payload(translation.native, "claude-up", False, call))
    assert "stream" not in sent and "session_id" not in sent and sent["model"] == "claude-up"
    assert sent["system"] == [*system, {"type": "text", "text": "<conversation_memory>x</conversation_memory>"}]
    assert [b["signature"] for b in sent["messages"][1]["content"] if b["type"] == "thinking"] == ["sig"]
    plain = orjson.loads(native_payload({**translation.native, "system": "Be"}, "u", True, call))
    assert plain["stream"] is True and plain["system"][0] == {"type": "text", "text": "Be"}


def test_a_completion_as_a_message() -> None:
    body = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me look", "reasoning_content": "Because",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
    }}]}  # fmt: skip
    completion = Completion(body=body, usage=Usage(10, 4, 3, 2), text="Let me look")
    message = message_from_completion(completion, MessagesSpec("alias", thinking=True), "d").body
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][2]["input"] == {"a": 1} and message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 5,
        "cache_creation_input_tokens": 2,
        "cache_read_input_tokens": 3,
        "output_tokens": 4,
    }
    assert message["model"] == "alias"
    plain = message_from_completion(completion, MessagesSpec("alias", thinking=False), "d").body
    assert [b["type"] for b in plain["content"]] == ["text", "tool_use"]
    broken = {"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1"}}]}}]}
    with pytest.raises(UpstreamProtocolError):
        message_from_completion(Completion(body=broken, usage=Usage(), text=""), MessagesSpec("m", False), "d")


def events_in(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    frames = b"".join(chunk.frame for chunk in chunks)
    return [orjson.loads(block.split(b"data: ", 1)[1]) for block in frames.split(b"\n\n") if block]


def translated(spec: MessagesSpec, chunks: list[StreamChunk]) -> list[StreamChunk]:
    async def collect() -> list[StreamChunk]:
        return [chunk async for chunk in MessageEvents(spec, "d").translate(aiter_of(chunks))]

    return asyncio.run(collect())


def test_a_stream_as_messages_events() -> None:
    chunks = canonical_stream(
        reasoning=("Hm",), text=("Hel", "lo"), calls=(("c1", "f", ('{"a"', ": 1}")),), finish="tool_calls"
    )
    out = translated(MessagesSpec("m", thinking=True), chunks)
    events = events_in(out)
    shape = [(e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type")) for e in events]
    assert shape == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"), ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"), ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"), ("content_block_stop", 2, None),
        ("message_delta", None, None), ("message_stop", None, None),
    ]  # fmt: skip
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-2]["usage"]["output_tokens"] == 3
    assert "".join(chunk.text for chunk in out) == "Hello"
    assert [chunk.has_content for chunk in out][:2] == [False, True]  # message_start alone commits nothing
    without = events_in(translated(MessagesSpec("m", thinking=False), canonical_stream(reasoning=("Hm",), text=("x",))))
    assert "thinking" not in str(without)


def test_interleaved_tool_calls_fail_the_stream() -> None:
    writer = ChunkWriter("m", False)
    chunks = [
        writer.tool_call_start(0, "a", "f"),
        writer.tool_call_start(1, "b", "g"),
        writer.tool_call_arguments(0, "{}"),
    ]
    with pytest.raises(UpstreamProtocolError):
        translated(MessagesSpec("m", False), chunks)


def native_events(*events: dict[str, Any]) -> list[bytes]:
    return [orjson.dumps(event) for event in events]


def test_the_pass_through_reads_what_the_gateway_needs() -> None:
    state = NativeStream("anthropic")
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 9, "cache_read_input_tokens": 4}}}
    raw = native_events(
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
         "usage": {"output_tokens": 5, "input_tokens": None}},
        {"type": "message_stop"},
    )  # fmt: skip
    chunks = [chunk for data in raw for chunk in state.feed(data)]
    assert [c.has_content for c in chunks] == [False, False, False, True, True, False, False]
    assert chunks[0].frame == b"event: message_start\ndata: " + raw[0] + b"\n\n"
    assert chunks[3].text == "Hi" and state.finished and state.complete
    assert chunks[5].finish_reason == "tool_calls" and chunks[5].usage == Usage(13, 5, 4, 0)
    with pytest.raises(UpstreamError):
        NativeStream("anthropic").feed(orjson.dumps({"type": "error", "error": {"type": "overloaded_error"}}))


def test_a_secret_split_across_anthropic_text_deltas_is_masked() -> None:
    secret = "sk-ant-secret-0123456789"
    state = NativeStream("anthropic")
    pieces = ["key: ", secret[:9], secret[9:], " end"]
    raw = [
        orjson.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})
        for p in pieces
    ]
    scrubber = StreamScrubber(SecretSet([secret]))
    out: list[StreamChunk] = []
    for data in raw:
        out += scrubber.feed(state.feed(data))
    out += scrubber.flush()
    texts = [orjson.loads(c.frame.split(b"data: ", 1)[1])["delta"]["text"] for c in out]
    assert "".join(texts) == "key: **** end" and "".join(c.text for c in out) == "key: **** end"
    assert all(c.frame.startswith(b"event: content_block_delta\ndata: ") for c in out)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidRequestError("x"), "invalid_request_error"),
        (RateLimitedError("x", retry_after=1), "rate_limit_error"),
        (NoDeploymentAvailableError("x"), "overloaded_error"),
        (UpstreamError("x", status=502), "api_error"),
        (UpstreamError("x", status=504), "timeout_error"),
        (AILBError("x"), "api_error"),
    ],
)
def test_error_types_follow_the_status(error: AILBError, kind: str) -> None:
    assert errors.error_type(error) == kind
