"""The Ollama translation of the newer chat features: logprobs, thinking, legacy and custom tools, allowed
tools, and the tool named by ``tool_choice``."""

from __future__ import annotations

from typing import Any

import pytest

from ailb.errors import InvalidRequestError
from ailb.providers.canonical import ChunkWriter
from ailb.providers.ollama import request, response
from ailb.providers.ollama.stream import OllamaStream

from .streams import feed_ndjson, ndjson_bytes, payloads

FUNCTION = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
WEATHER_TOOL = {"type": "function", "function": FUNCTION}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}
HI_LOGPROB = {
    "token": "Hi",
    "logprob": -0.25,
    "bytes": [72, 105],
    "top_logprobs": [{"token": "Hi", "logprob": -0.25}, {"token": "Hey", "logprob": -1.5, "bytes": [72, 101, 121]}],
}
HI_OPENAI = {
    "token": "Hi",
    "logprob": -0.25,
    "bytes": [72, 105],
    "top_logprobs": [
        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
        {"token": "Hey", "logprob": -1.5, "bytes": [72, 101, 121]},
    ],
}


def build(body: dict[str, Any]) -> dict[str, Any]:
    return request.build_request(body, "llama3:8b", False)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "public", "messages": list(messages) or [{"role": "user", "content": "Hi"}], **extra}


# --- requests --------------------------------------------------------------------------------------------------
def test_logprobs_and_top_logprobs_are_sent() -> None:
    out = build(chat(logprobs=True, top_logprobs=3))
    assert (out["logprobs"], out["top_logprobs"]) == (True, 3)
    assert "logprobs" not in build(chat(logprobs=False, top_logprobs=3))
    assert "top_logprobs" not in build(chat(logprobs=True))


@pytest.mark.parametrize(
    ("extra", "think"),
    [
        ({"reasoning_effort": "high"}, True),
        ({"reasoning_effort": "low"}, True),
        ({"reasoning_effort": "minimal"}, False),
        ({"reasoning_effort": "none"}, False),
        ({"think": "medium", "reasoning_effort": "none"}, "medium"),
        ({"think": False}, False),
    ],
)
def test_reasoning_effort_and_think(extra: dict[str, Any], think: Any) -> None:
    assert build(chat(**extra))["think"] == think


def test_no_reasoning_asked_sends_no_think() -> None:
    assert "think" not in build(chat())


@pytest.mark.parametrize(
    ("extra", "param"), [({"reasoning_effort": "huge"}, "reasoning_effort"), ({"think": "max"}, "think")]
)
def test_unknown_reasoning_levels_are_refused(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(**extra))
    assert info.value.param == param


def test_reasoning_and_legacy_calls_in_the_history() -> None:
    out = build(
        chat(
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "Look it up.",
                "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {"role": "function", "name": "get_weather", "content": "sunny"},
            functions=[FUNCTION],
        )
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": "",
        "thinking": "Look it up.",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    }
    assert out["messages"][2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}
    assert out["tools"] == [{"type": "function", "function": FUNCTION}]


def test_function_call_none_sends_no_tools() -> None:
    assert "tools" not in build(chat(functions=[FUNCTION], function_call="none"))


def test_a_named_or_allowed_tool_is_the_only_one_offered() -> None:
    named = build(
        chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice={"type": "function", "function": {"name": "get_time"}})
    )
    assert [tool["function"]["name"] for tool in named["tools"]] == ["get_time"]
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [WEATHER_TOOL]}}
    assert [
        tool["function"]["name"] for tool in build(chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=allowed))["tools"]
    ] == ["get_weather"]


def test_custom_tools_are_refused() -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(tools=[{"type": "custom", "custom": {"name": "run_sql"}}]))
    assert info.value.param == "tools[0]"


# --- answers ---------------------------------------------------------------------------------------------------
def answer(**extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": "Hi", **extra.pop("message", {})}
    return {
        "model": "llama3:8b",
        "message": message,
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 3,
        "eval_count": 1,
        **extra,
    }


def test_logprobs_become_openai_logprobs_content() -> None:
    done = response.completion_from_response(answer(logprobs=[HI_LOGPROB, {"token": "!"}]), "llama3:8b", "dep")
    logprobs = done.body["choices"][0]["logprobs"]
    assert logprobs == {
        "content": [HI_OPENAI, {"token": "!", "logprob": 0.0, "bytes": [33], "top_logprobs": []}],
        "refusal": None,
    }


def test_no_logprobs_means_none() -> None:
    assert response.completion_from_response(answer(), "llama3:8b", "dep").body["choices"][0]["logprobs"] is None


def test_thinking_becomes_reasoning_content() -> None:
    done = response.completion_from_response(answer(message={"thinking": "Greet back."}), "llama3:8b", "dep")
    assert done.body["choices"][0]["message"]["reasoning_content"] == "Greet back."
    assert done.text == "Hi"


def test_legacy_functions_get_a_function_call() -> None:
    call = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    data = answer(message={"content": "", "tool_calls": [call, call]})
    choice = response.completion_from_response(data, "llama3:8b", "dep", legacy_functions=True).body["choices"][0]
    assert choice["message"]["function_call"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert choice["finish_reason"] == "function_call" and "tool_calls" not in choice["message"]


# --- streams ---------------------------------------------------------------------------------------------------
def line(content: str = "", **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, **extra.pop("message", {})}
    return {"model": "llama3:8b", "message": message, "done": False, **extra}


FINAL = {
    "model": "llama3:8b",
    "message": {"role": "assistant", "content": ""},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 3,
    "eval_count": 2,
}


async def test_streamed_thinking_and_logprobs() -> None:
    lines = [
        line(message={"thinking": "Greet "}),
        line(message={"thinking": "back."}),
        line("Hi", logprobs=[HI_LOGPROB]),
        line("!", logprobs=[{"token": "!", "logprob": -0.5}]),
        FINAL,
    ]
    state = OllamaStream("llama3:8b", include_usage=False, deployment="dep")
    chunks = await feed_ndjson(state, ndjson_bytes(lines))
    choices = [obj["choices"][0] for obj in payloads(chunks) if obj["choices"]]
    assert "".join(c["delta"].get("reasoning_content") or "" for c in choices) == "Greet back."
    assert chunks[0].has_content
    with_text = [c for c in choices if c["delta"].get("content")]
    assert [c["logprobs"]["content"] for c in with_text] == [
        [HI_OPENAI],
        [{"token": "!", "logprob": -0.5, "bytes": [33], "top_logprobs": []}],
    ]
    assert "".join(c.text for c in chunks) == "Hi!"


async def test_streamed_legacy_function_call_keeps_only_the_first_call() -> None:
    call = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    writer = ChunkWriter("llama3:8b", False, legacy_functions=True)
    state = OllamaStream("llama3:8b", include_usage=False, deployment="dep", writer=writer)
    chunks = await feed_ndjson(state, ndjson_bytes([line(message={"tool_calls": [call, call]}), FINAL]))
    choices = [obj["choices"][0] for obj in payloads(chunks) if obj["choices"]]
    assert [c["delta"]["function_call"] for c in choices if "function_call" in c["delta"]] == [
        {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    ]
    assert choices[-1]["finish_reason"] == "function_call"
