"""The pure Anthropic translation: requests, answers, errors and streamed event sequences."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ailb.contract import Usage
from ailb.errors import InvalidRequestError, UpstreamError, UpstreamProtocolError, UpstreamStatusError
from ailb.providers.anthropic import request as translate
from ailb.providers.anthropic import response
from ailb.providers.anthropic.stream import AnthropicStream
from ailb.redaction import Redactor

from .streams import assembled_tool_calls, feed_sse, payloads, sse_bytes

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def build(body: dict[str, Any], stream: bool = False, default_max_tokens: int = 4096) -> dict[str, Any]:
    return translate.build_request(body, "claude-x", stream, default_max_tokens)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "public", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# --- requests ------------------------------------------------------------------------------------------------
def test_system_and_developer_messages_become_top_level_system() -> None:
    out = build(
        chat({"role": "system", "content": "Be brief."}, user("Hi"), {"role": "developer", "content": "No emoji."})
    )
    assert out["system"] == "Be brief.\n\nNo emoji."
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert out["model"] == "claude-x"
    assert "stream" not in out


def test_system_given_as_text_parts() -> None:
    out = build(chat({"role": "system", "content": [{"type": "text", "text": "Rules."}]}, user("Hi")))
    assert out["system"] == "Rules."


def test_request_body_is_the_request_as_json_bytes() -> None:
    body = chat(user("Hi"), max_tokens=5)
    assert orjson.loads(translate.request_body(body, "claude-x", True, 100)) == build(body, stream=True)
    assert build(body, stream=True)["stream"] is True


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({"max_completion_tokens": 50, "max_tokens": 10}, 50), ({"max_tokens": 10}, 10), ({}, 777)],
)
def test_max_tokens_from_request_or_deployment_default(extra: dict[str, Any], expected: int) -> None:
    assert build(chat(user("Hi"), **extra), default_max_tokens=777)["max_tokens"] == expected


def test_sampling_parameters_and_metadata() -> None:
    out = build(chat(user("Hi"), temperature=1.7, top_p=0.9, stop="END", user="u-42", seed=3, logit_bias={"1": 2}))
    assert out["temperature"] == 1.0
    assert "top_p" not in out
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "u-42"}
    assert "seed" not in out and "logit_bias" not in out


def test_temperature_within_range_is_kept_and_stop_list_passes() -> None:
    out = build(chat(user("Hi"), temperature=0.25, stop=["a", "b"]))
    assert out["temperature"] == 0.25
    assert out["stop_sequences"] == ["a", "b"]


def test_top_p_alone_is_sent() -> None:
    out = build(chat(user("Hi"), top_p=0.5))
    assert out["top_p"] == 0.5 and "temperature" not in out


def test_whitespace_only_stop_sequences_are_dropped() -> None:
    assert build(chat(user("Hi"), stop=["\n", " ", "END"]))["stop_sequences"] == ["END"]
    assert "stop_sequences" not in build(chat(user("Hi"), stop="\n\n"))


def test_more_than_one_choice_is_rejected() -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(user("Hi"), n=2))
    assert info.value.param == "n"
    assert build(chat(user("Hi"), n=1))["messages"]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_tools_are_translated() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    out = build(chat(user("Hi"), tools=[WEATHER_TOOL, bare]))
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in out


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert build(chat(user("Hi"), tools=[WEATHER_TOOL], tool_choice=choice))["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    out = build(chat(user("Hi"), tools=[WEATHER_TOOL], parallel_tool_calls=False))
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    out = build(chat(user("Hi"), tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False))
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in build(chat(user("Hi"), tool_choice="auto"))


def tool_conversation() -> list[dict[str, Any]]:
    return [
        user("Weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
        user("Thanks, which is warmer?"),
    ]


def test_tool_calls_and_results_are_translated_and_merged() -> None:
    out = build(chat(*tool_conversation(), tools=[WEATHER_TOOL]))
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
        {"type": "text", "text": "Thanks, which is warmer?"},
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    with pytest.raises(InvalidRequestError) as info:
        build(chat(user("Hi"), {"role": "assistant", "content": None, "tool_calls": [call]}, user("go")))
    assert info.value.param == "messages"


def test_images_data_url_and_http_url() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    blocks = build(chat(user(content)))["messages"][0]["content"]
    assert blocks == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url", ["data:image/bmp;base64,AAAA", "data:image/png,notbase64", "ftp://example.com/cat.png", ""]
)
def test_unusable_images_are_rejected(url: str) -> None:
    with pytest.raises(InvalidRequestError):
        build(chat(user([{"type": "image_url", "image_url": {"url": url}}])))


def test_pdf_file_becomes_a_document_and_audio_is_rejected() -> None:
    pdf = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
    blocks = build(chat(user([pdf])))["messages"][0]["content"]
    assert blocks == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    ]
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(InvalidRequestError):
        build(chat(user([audio])))


def test_consecutive_same_role_messages_are_merged() -> None:
    out = build(
        chat(
            user("one"),
            user("two"),
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": "b"},
            user("three"),
        )
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "user", "content": [{"type": "text", "text": "three"}]},
    ]


def test_conversation_opening_with_assistant_gets_a_user_turn_first() -> None:
    out = build(chat({"role": "system", "content": "S"}, {"role": "assistant", "content": "Hello!"}, user("Hi")))
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][0]["content"][0]["text"] == translate.OPENING_USER_TEXT


def test_empty_messages_are_dropped_and_a_final_assistant_prefill_is_stripped() -> None:
    out = build(chat(user("Hi"), user(""), user(" \n"), {"role": "assistant", "content": "The answer is "}))
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "The answer is"}]},
    ]


def test_only_system_messages_are_rejected() -> None:
    with pytest.raises(InvalidRequestError):
        build(chat({"role": "system", "content": "S"}))


def test_response_format_json_becomes_a_system_instruction() -> None:
    out = build(chat({"role": "system", "content": "S"}, user("Hi"), response_format={"type": "json_object"}))
    assert out["system"] == "S\n\n" + translate.JSON_INSTRUCTION
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = build(
        chat(user("Hi"), response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    )
    assert out["system"].startswith(translate.JSON_INSTRUCTION)
    assert orjson.dumps(schema).decode() in out["system"]
    assert "system" not in build(chat(user("Hi"), response_format={"type": "text"}))


# --- answers -------------------------------------------------------------------------------------------------
def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-x-20250101",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def test_text_answer_becomes_a_chat_completion() -> None:
    done = response.completion_from_response(
        message([{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}], cache_read_input_tokens=3),
        "claude-x",
        "dep",
    )
    body = done.body
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "claude-x-20250101"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 13,
        "completion_tokens": 5,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    assert done.text == "Hello there"
    assert done.usage == Usage(13, 5, cache_read_tokens=3)


def test_prompt_cache_reads_and_writes_are_counted_apart_within_the_prompt() -> None:
    done = response.completion_from_response(
        message([{"type": "text", "text": "Hi"}], cache_read_input_tokens=700, cache_creation_input_tokens=300),
        "claude-x",
        "dep",
    )
    assert done.usage == Usage(1010, 5, cache_read_tokens=700, cache_write_tokens=300)
    assert done.body["usage"]["prompt_tokens"] == 1010
    assert done.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 700}


def test_completion_ids_are_unique() -> None:
    ids = {response.completion_from_response(message([]), "m", "d").body["id"] for _ in range(50)}
    assert len(ids) == 50


def test_tool_use_answer_becomes_tool_calls() -> None:
    data = message(
        [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
        stop_reason="tool_use",
    )
    body = response.completion_from_response(data, "claude-x", "dep").body
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    body = response.completion_from_response(message([{"type": "text", "text": "x"}], stop_reason), "m", "d").body
    assert body["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("data", [{"type": "message"}, [], "x", {"content": "text"}])
def test_malformed_answer_is_a_protocol_error(data: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        response.completion_from_response(data, "m", "dep")


def test_model_ids() -> None:
    data = {"data": [{"id": "claude-a", "type": "model"}, {"id": "claude-b"}, {"type": "model"}], "has_more": False}
    assert response.model_ids(data) == ["claude-a", "claude-b"]
    assert response.model_ids({"error": "x"}) == []


# --- errors --------------------------------------------------------------------------------------------------
REDACT = Redactor(["sk-ant-configured-key-1234"])


def error_body(kind: str, text: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": text}})


def test_overloaded_529_is_retryable() -> None:
    error = response.status_error(529, error_body("overloaded_error", "Overloaded"), "dep", None, REDACT)
    assert isinstance(error, UpstreamStatusError)
    assert error.retryable and error.upstream_status == 529 and error.status == 502
    assert error.message == "Deployment 'dep' failed with HTTP 529." and error.deployment == "dep"
    assert error.detail == "Overloaded"  # the upstream's words are for the log


def test_a_client_error_shows_the_upstream_text_redacted() -> None:
    body = error_body("invalid_request_error", "bad key SK-ANT-CONFIGURED-KEY-1234 sent as x-api-key: abcdefgh")
    error = response.status_error(400, body, "dep", None, REDACT)
    assert error.message == "bad key **** sent as x-api-key: ****"


def test_invalid_request_is_the_clients_fault() -> None:
    error = response.status_error(400, error_body("invalid_request_error", "max_tokens: too big"), "dep", None, REDACT)
    assert not error.retryable
    assert error.status == 400
    assert error.to_body()["error"]["type"] == "invalid_request_error"
    assert error.message == "max_tokens: too big"


def test_rate_limit_and_not_found_and_auth() -> None:
    limited = response.status_error(429, error_body("rate_limit_error", "slow down"), "dep", 2.0, REDACT)
    assert limited.retryable and limited.retry_after == 2.0 and limited.type == "rate_limit_error"
    missing = response.status_error(404, error_body("not_found_error", "model: nope"), "dep", None, REDACT)
    assert not missing.retryable and missing.status == 404 and missing.type == "invalid_request_error"
    auth = response.status_error(401, error_body("authentication_error", "invalid x-api-key"), "dep", None, REDACT)
    assert isinstance(auth, UpstreamStatusError) and auth.misconfigured and auth.retryable
    assert "x-api-key" not in auth.message


def test_mid_stream_errors() -> None:
    overloaded = response.stream_error({"type": "overloaded_error", "message": "Overloaded"}, "dep")
    assert overloaded.retryable and overloaded.message == "Deployment 'dep' failed mid-stream (overloaded_error)."
    assert overloaded.detail == "Overloaded"
    invalid = response.stream_error({"type": "invalid_request_error", "message": "bad"}, "dep")
    assert not invalid.retryable and invalid.status == 400
    forged = response.stream_error({"type": "sk-ant-forged-type", "message": "x"}, "dep")
    assert forged.message == "Deployment 'dep' failed mid-stream." and forged.status == 502


# --- streams -------------------------------------------------------------------------------------------------
def start(input_tokens: int = 25) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x-20250101",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 5},
        },
    }


def text_block(index: int, *pieces: str) -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        *({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}} for p in pieces),
        {"type": "content_block_stop", "index": index},
    ]


def tool_block(index: int, call_id: str, name: str, *fragments: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
        },
        *(
            {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": f}}
            for f in fragments
        ),
        {"type": "content_block_stop", "index": index},
    ]


def end(stop_reason: str, output_tokens: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]


TEXT_STREAM = [start(), {"type": "ping"}, *text_block(0, "Hel", "lo", " world"), *end("end_turn", 12)]


async def test_text_stream_becomes_chunks() -> None:
    state = AnthropicStream("claude-x", include_usage=True, deployment="dep")
    chunks = await feed_sse(state, sse_bytes(TEXT_STREAM))
    assert state.finished
    objs = payloads(chunks)
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("role" not in o["choices"][0]["delta"] for o in objs[1:] if o["choices"])
    assert len({(o["id"], o["created"], o["model"]) for o in objs}) == 1
    assert objs[0]["id"].startswith("chatcmpl-") and objs[0]["model"] == "claude-x-20250101"
    assert all(o["object"] == "chat.completion.chunk" for o in objs)
    assert "".join(c.text for c in chunks) == "Hello world"
    assert [c.has_content for c in chunks] == [False, True, True, True, False, False]
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert objs[-2]["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert objs[-1]["choices"] == [] and objs[-1]["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "total_tokens": 42,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert chunks[-1].usage == Usage(30, 12, cache_write_tokens=5)


async def test_usage_chunk_frame_is_empty_unless_asked_for() -> None:
    state = AnthropicStream("claude-x", include_usage=False, deployment="dep")
    chunks = await feed_sse(state, sse_bytes(TEXT_STREAM), piece_size=1)
    assert chunks[-1].frame == b"" and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    assert all(o["choices"] for o in payloads(chunks))


async def test_tool_use_stream_gives_indexed_tool_call_deltas() -> None:
    events = [
        start(),
        *text_block(0, "Let me check."),
        *tool_block(1, "toolu_a", "get_weather", "", '{"city": ', '"Paris"}'),
        *tool_block(2, "toolu_b", "get_time", '{"tz":"CET"}'),
        *end("tool_use", 40),
    ]
    state = AnthropicStream("claude-x", include_usage=False, deployment="dep")
    chunks = await feed_sse(state, sse_bytes(events))
    objs = payloads(chunks)
    starts = [
        o["choices"][0]["delta"]["tool_calls"][0]
        for o in objs
        if o["choices"] and "tool_calls" in o["choices"][0]["delta"]
    ]
    assert starts[0] == {
        "index": 0,
        "id": "toolu_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    calls = assembled_tool_calls(objs)
    assert calls == {
        0: {"id": "toolu_a", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "toolu_b", "name": "get_time", "arguments": '{"tz":"CET"}'},
    }
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    assert "".join(c.text for c in chunks) == "Let me check."


async def test_stream_without_message_stop_is_not_finished() -> None:
    state = AnthropicStream("claude-x", include_usage=True, deployment="dep")
    chunks = await feed_sse(state, sse_bytes(TEXT_STREAM[:-2]))
    assert not state.finished
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize(("kind", "retryable"), [("overloaded_error", True), ("invalid_request_error", False)])
async def test_error_event_raises(kind: str, retryable: bool) -> None:
    events = [start(), *text_block(0, "Hi"), {"type": "error", "error": {"type": kind, "message": "boom"}}]
    state = AnthropicStream("claude-x", include_usage=True, deployment="dep")
    with pytest.raises(UpstreamError) as info:
        await feed_sse(state, sse_bytes(events))
    assert info.value.retryable is retryable
    assert info.value.detail == "boom" and "boom" not in info.value.message and info.value.deployment == "dep"


async def test_unknown_events_and_blocks_are_ignored() -> None:
    events = [
        start(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "future_block", "x": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "x": "hmm"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "something_new", "x": 1},
        *text_block(1, "Answer"),
        *end("end_turn", 3),
    ]
    state = AnthropicStream("claude-x", include_usage=False, deployment="dep")
    chunks = await feed_sse(state, sse_bytes(events))
    assert "".join(c.text for c in chunks) == "Answer" and state.finished
    assert "hmm" not in b"".join(c.frame for c in chunks).decode()


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"[1]",
        orjson.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}),
    ],
)
def test_malformed_or_out_of_order_events_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        AnthropicStream("m", include_usage=False, deployment="dep").feed(data)


def test_json_delta_for_a_text_block_is_a_protocol_error() -> None:
    state = AnthropicStream("m", include_usage=False, deployment="dep")
    state.feed(orjson.dumps(start()))
    state.feed(orjson.dumps(text_block(0)[0]))
    bad = {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{"}}
    with pytest.raises(UpstreamProtocolError):
        state.feed(orjson.dumps(bad))


def test_message_stop_without_message_delta_still_finishes() -> None:
    state = AnthropicStream("m", include_usage=True, deployment="dep")
    chunks = [c for e in [start(7), *text_block(0, "x"), {"type": "message_stop"}] for c in state.feed(orjson.dumps(e))]
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12
