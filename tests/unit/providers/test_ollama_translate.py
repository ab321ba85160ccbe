"""The pure Ollama translation: requests, answers, errors, embeddings and streamed NDJSON lines."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ailb.errors import InvalidRequestError, UpstreamError, UpstreamProtocolError, UpstreamStatusError
from ailb.providers.ollama import request, response
from ailb.providers.ollama.stream import OllamaStream
from ailb.redaction import Redactor

from .streams import assembled_tool_calls, feed_ndjson, ndjson_bytes, payloads

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}


def build(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    return request.build_request(body, "llama3:8b", stream)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "public", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# --- requests ------------------------------------------------------------------------------------------------
def test_plain_request() -> None:
    out = build(chat({"role": "system", "content": "Be brief."}, user("Hi"), {"role": "developer", "content": "D"}))
    assert out == {
        "model": "llama3:8b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "D"},
        ],
        "stream": False,
    }
    assert build(chat(user("Hi")), stream=True)["stream"] is True
    assert orjson.loads(request.request_body(chat(user("Hi")), "llama3:8b", True)) == build(chat(user("Hi")), True)


def test_options() -> None:
    body = chat(user("Hi"), temperature=1.5, top_p=0.8, max_tokens=64, stop="END", seed=7, presence_penalty=0.5)
    assert build(body)["options"] == {
        "temperature": 1.5,
        "top_p": 0.8,
        "num_predict": 64,
        "stop": ["END"],
        "seed": 7,
        "presence_penalty": 0.5,
    }
    assert build(chat(user("Hi"), max_completion_tokens=9, max_tokens=3))["options"] == {"num_predict": 9}
    assert "options" not in build(chat(user("Hi"), user="u-1"))


def test_more_than_one_choice_is_rejected() -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(user("Hi"), n=3))
    assert info.value.param == "n"


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, "json"),
        ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}, {"type": "object"}),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "json"),
    ],
)
def test_response_format_becomes_format(response_format: dict[str, Any], expected: Any) -> None:
    assert build(chat(user("Hi"), response_format=response_format))["format"] == expected


def test_text_response_format_sends_no_format() -> None:
    assert "format" not in build(chat(user("Hi"), response_format={"type": "text"}))


def test_tools_pass_in_openai_shape_unless_tool_choice_is_none() -> None:
    out = build(chat(user("Hi"), tools=[WEATHER_TOOL], tool_choice="required"))
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assert "tools" not in build(chat(user("Hi"), tools=[WEATHER_TOOL], tool_choice="none"))


def test_tool_calls_and_results() -> None:
    messages = [
        user("Weather?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "-3C"},
        {"role": "tool", "tool_call_id": "unknown", "content": [{"type": "text", "text": "?"}]},
    ]
    out = build(chat(*messages))["messages"]
    assert out[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    }
    assert out[2] == {"role": "tool", "content": "-3C", "tool_name": "get_weather"}
    assert out[3] == {"role": "tool", "content": "?"}


def test_bad_tool_call_arguments_are_rejected() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    with pytest.raises(InvalidRequestError):
        build(chat(user("Hi"), {"role": "assistant", "tool_calls": [call]}))


def test_data_url_images_go_into_images() -> None:
    content = [
        {"type": "text", "text": "What is"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "text", "text": "this?"},
    ]
    assert build(chat(user(content)))["messages"] == [
        {"role": "user", "content": "What is\nthis?", "images": [PNG_B64]}
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png,raw"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ],
)
def test_unusable_content_is_rejected(part: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(user([part])))
    assert info.value.param == "messages"


# --- answers -------------------------------------------------------------------------------------------------
def answer(message: dict[str, Any], done_reason: str = "stop") -> dict[str, Any]:
    return {
        "model": "llama3:8b",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", **message},
        "done": True,
        "done_reason": done_reason,
        "prompt_eval_count": 21,
        "eval_count": 8,
        "total_duration": 123,
    }


def test_text_answer_becomes_a_chat_completion() -> None:
    done = response.completion_from_response(answer({"content": "Hello!"}), "llama3:8b", "dep")
    body = done.body
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "llama3:8b" and isinstance(body["created"], int)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 21, "completion_tokens": 8, "total_tokens": 29}
    assert done.text == "Hello!" and done.usage.total_tokens == 29


def test_length_finish() -> None:
    body = response.completion_from_response(answer({"content": "Hel"}, "length"), "m", "dep").body
    assert body["choices"][0]["finish_reason"] == "length"


def test_tool_call_answer() -> None:
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"function": {"name": "now", "arguments": {}}},
    ]
    body = response.completion_from_response(answer({"content": "", "tool_calls": calls}), "m", "dep").body
    message = body["choices"][0]["message"]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    assert [c["function"] for c in message["tool_calls"]] == [
        {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"name": "now", "arguments": "{}"},
    ]
    ids = [c["id"] for c in message["tool_calls"]]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2
    assert all(c["type"] == "function" for c in message["tool_calls"])


@pytest.mark.parametrize("data", [{"done": True}, [], {"message": "hi"}])
def test_malformed_answer_is_a_protocol_error(data: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        response.completion_from_response(data, "m", "dep")


def test_model_ids_accept_name_or_model() -> None:
    data = {"models": [{"name": "llama3:8b", "model": "llama3:8b"}, {"model": "qwen2:7b"}, {"size": 1}]}
    assert response.model_ids(data) == ["llama3:8b", "qwen2:7b"]
    assert response.model_ids({}) == []


def test_embeddings() -> None:
    assert orjson.loads(request.embed_request(["a", "b"], "nomic")) == {"model": "nomic", "input": ["a", "b"]}
    vectors = response.embeddings_from_response({"model": "nomic", "embeddings": [[0.1, 1], [0.2, 0.3]]}, 2, "dep")
    assert vectors == [[0.1, 1.0], [0.2, 0.3]]
    with pytest.raises(UpstreamProtocolError):
        response.embeddings_from_response({"embeddings": [[0.1]]}, 2, "dep")
    with pytest.raises(UpstreamProtocolError):
        response.embeddings_from_response({"embeddings": [["x"], [1]]}, 2, "dep")


def test_errors() -> None:
    redact = Redactor()
    missing = response.status_error(
        404, b'{"error":"model \\"nope\\" not found, try pulling it first"}', "dep", None, redact
    )
    assert isinstance(missing, UpstreamStatusError)
    assert not missing.retryable and missing.status == 404 and missing.code == "model_not_found"
    assert "not found" in missing.message
    broken = response.status_error(500, b'{"error":"llama runner process has terminated"}', "dep", None, redact)
    assert broken.retryable and "llama runner" not in broken.message and "llama runner" in (broken.detail or "")
    mid = response.stream_error("out of memory", "dep")
    assert mid.retryable and mid.message == "Deployment 'dep' failed mid-stream." and mid.detail == "out of memory"


# --- streams -------------------------------------------------------------------------------------------------
def line(content: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "model": "llama3:8b",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": False,
        **extra,
    }


def final(done_reason: str = "stop") -> dict[str, Any]:
    return line(done=True, done_reason=done_reason, prompt_eval_count=11, eval_count=4, total_duration=99)


async def test_text_stream_becomes_chunks() -> None:
    state = OllamaStream("llama3:8b", include_usage=True, deployment="dep")
    chunks = await feed_ndjson(state, ndjson_bytes([line("Hel"), line("lo"), line("!"), final()]))
    assert state.finished
    objs = payloads(chunks)
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert all("role" not in o["choices"][0]["delta"] for o in objs[1:] if o["choices"])
    assert len({(o["id"], o["created"], o["model"]) for o in objs}) == 1
    assert "".join(c.text for c in chunks) == "Hello!"
    assert [c.has_content for c in chunks] == [True, True, True, False, False]
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert objs[-1] == {
        "id": objs[0]["id"],
        "object": "chat.completion.chunk",
        "created": objs[0]["created"],
        "model": "llama3:8b",
        "choices": [],
        "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15},
    }


async def test_usage_chunk_frame_is_empty_unless_asked_for() -> None:
    state = OllamaStream("llama3:8b", include_usage=False, deployment="dep")
    chunks = await feed_ndjson(state, ndjson_bytes([line("a"), final("length")]), piece_size=3)
    assert chunks[-1].frame == b"" and chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]


async def test_tool_call_stream() -> None:
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"function": {"name": "now", "arguments": {}}},
    ]
    lines = [line("", message={"role": "assistant", "content": "", "tool_calls": calls}), final()]
    state = OllamaStream("llama3:8b", include_usage=False, deployment="dep")
    chunks = await feed_ndjson(state, ndjson_bytes(lines))
    assembled = assembled_tool_calls(payloads(chunks))
    assert [(c["name"], c["arguments"]) for c in assembled.values()] == [
        ("get_weather", '{"city":"Oslo"}'),
        ("now", "{}"),
    ]
    assert sorted(assembled) == [0, 1]
    assert all(c["id"].startswith("call_") for c in assembled.values())
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    assert chunks[0].has_content


async def test_stream_without_done_is_not_finished() -> None:
    state = OllamaStream("llama3:8b", include_usage=True, deployment="dep")
    chunks = await feed_ndjson(state, ndjson_bytes([line("Hel"), line("lo")]))
    assert not state.finished and all(c.usage is None for c in chunks)


async def test_error_line_raises() -> None:
    state = OllamaStream("llama3:8b", include_usage=True, deployment="dep")
    with pytest.raises(UpstreamError) as info:
        await feed_ndjson(state, ndjson_bytes([line("Hel"), {"error": "runner crashed"}]))
    assert info.value.detail == "runner crashed" and "runner" not in info.value.message and info.value.retryable


@pytest.mark.parametrize("data", [b"{oops", b'"text"'])
def test_malformed_lines_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        OllamaStream("m", include_usage=False, deployment="dep").feed(data)


def test_lines_after_done_are_ignored() -> None:
    state = OllamaStream("m", include_usage=False, deployment="dep")
    state.feed(orjson.dumps(final()))
    assert state.feed(orjson.dumps(line("late"))) == []
