"""The Responses API translators: request → canonical chat call, completion → response, chunks → events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ailb.contract import Completion, Usage
from ailb.errors import InvalidRequestError, UpstreamError
from ailb.ingress.responses.request import encrypt_thinking, to_chat_call
from ailb.ingress.responses.response import from_completion
from ailb.ingress.responses.stream import ResponseEvents
from ailb.redaction import Redactor
from tests.unit.ingress.chunks import canonical_stream

SIGNED = [{"type": "thinking", "thinking": "Hmm.", "signature": "sig-1"}]


def call_of(**body: Any) -> Any:
    call, _spec = to_chat_call({"model": "m", **body}, "tenant", {})
    return call


def test_a_string_input_with_instructions() -> None:
    call = call_of(input="Hello", instructions="Be brief", max_output_tokens=20, temperature=0.1, user="u1")
    assert call.body == {
        "model": "m",
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hello"}],
        "max_completion_tokens": 20,
        "temperature": 0.1,
        "user": "u1",
    }
    assert not call.stream and call.tenant == "tenant"


def test_items_become_a_conversation() -> None:
    items = [
        {"role": "user", "content": [
            {"type": "input_text", "text": "Look"}, {"type": "input_image", "image_url": "data:image/png;base64,AA"}
        ]},
        {"type": "reasoning", "summary": [], "encrypted_content": encrypt_thinking(SIGNED)},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "c1", "name": "look", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "look", "arguments": '{"x": 1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
        {"role": "developer", "content": "Stay on topic"},
    ]  # fmt: skip
    messages = call_of(input=items).body["messages"]
    assert messages[0]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    assistant = messages[1]
    assert assistant["content"] == "Checking." and assistant["thinking_blocks"] == SIGNED
    assert [c["id"] for c in assistant["tool_calls"]] == ["c1", "c2"]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
        {"role": "developer", "content": "Stay on topic"},
    ]


def test_tools_choices_and_formats_translate() -> None:
    tool = {"type": "function", "name": "get", "parameters": {"type": "object"}, "strict": True}
    call = call_of(
        input="x", tools=[tool], tool_choice={"type": "function", "name": "get"}, parallel_tool_calls=False,
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
        reasoning={"effort": "high"},
    )  # fmt: skip
    assert call.body["tools"] == [
        {"type": "function", "function": {"name": "get", "parameters": {"type": "object"}, "strict": True}}
    ]
    assert call.body["tool_choice"] == {"type": "function", "function": {"name": "get"}}
    assert call.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}},
    }
    assert call.body["parallel_tool_calls"] is False and call.body["reasoning_effort"] == "high"
    allowed = call_of(
        input="x",
        tools=[tool],
        tool_choice={"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get"}]},
    )
    assert allowed.body["tool_choice"]["allowed_tools"]["mode"] == "auto"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"input": [{"role": "user", "content": [{"type": "input_txt", "text": "x"}]}]}, "input[0].content[0].type"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "n"}]}, "input[0]"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"text": {"verbosity": "low"}}, "text.verbosity"),
        (
            {"input": [{"type": "reasoning", "summary": [], "encrypted_content": "ailb.thinking.v1:not base64!"}]},
            "input[0].encrypted_content",
        ),
        ({"seed": 3}, "seed"),
        ({"base_url": "http://elsewhere"}, "base_url"),
    ],
)
def test_what_cannot_be_served_is_refused(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        to_chat_call({"model": "m", "input": "x", **body}, "t", {})
    assert refused.value.param == param


def test_others_reasoning_items_are_not_sent_back() -> None:
    items = [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought"}]},
        {"role": "user", "content": "x"},
    ]
    assert call_of(input=items).body["messages"] == [{"role": "user", "content": "x"}]


def completion(message: dict[str, Any], finish: str = "stop") -> Completion:
    body = {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": {}}
    return Completion(body=body, usage=Usage(10, 5, 4), text=str(message.get("content") or ""))


def test_a_completion_as_a_response() -> None:
    _call, spec = to_chat_call(
        {"model": "m", "input": "x", "metadata": {"a": "b"}, "reasoning": {"summary": "auto"}}, "t", {}
    )
    message = {
        "role": "assistant", "content": "Hi", "reasoning_content": "Thinking", "thinking_blocks": SIGNED,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }  # fmt: skip
    response = from_completion(completion(message, "tool_calls"), spec)
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    reasoning = response["output"][0]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Thinking"}]
    assert reasoning["encrypted_content"] == encrypt_thinking(SIGNED)
    assert response["output"][2]["call_id"] == "c1" and response["status"] == "completed"
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 4} and response["metadata"] == {"a": "b"}
    cut = from_completion(completion({"role": "assistant", "content": "Hi"}, "length"), spec)
    assert cut["status"] == "incomplete" and cut["incomplete_details"] == {"reason": "max_output_tokens"}


def events_of(frames: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(block.split(b"data: ", 1)[1]) for block in frames.split(b"\n\n") if block]


def test_a_stream_as_events() -> None:
    _call, spec = to_chat_call({"model": "m", "input": "x"}, "t", {})
    writer = ResponseEvents(spec)
    chunks = canonical_stream(reasoning=("Hm",), text=("Hel", "lo"), calls=(("c1", "f", ('{"a"', ": 1}")),))
    frames = writer.opening() + b"".join(writer.feed(chunk) for chunk in chunks) + writer.closing()
    events = events_of(frames)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][2]["arguments"] == '{"a": 1}' and final["usage"]["output_tokens"] == 3


def test_an_empty_answer_still_has_its_message_and_a_failure_is_reported() -> None:
    _call, spec = to_chat_call({"model": "m", "input": "x"}, "t", {})
    writer = ResponseEvents(spec)
    writer.opening()
    events = events_of(writer.closing())
    assert events[0]["type"] == "response.output_item.added"
    assert [(item["type"], item["content"][0]["text"]) for item in events[-1]["response"]["output"]] == [
        ("message", "")
    ]
    failed = ResponseEvents(spec)
    failed.opening()
    error = UpstreamError("Deployment 'x' failed mid-stream.", deployment="x")
    kinds = [(e["type"], e.get("message")) for e in events_of(failed.failure(error, Redactor()))]
    assert kinds == [("error", "Deployment 'x' failed mid-stream."), ("response.failed", None)]
