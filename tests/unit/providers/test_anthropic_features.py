"""The Anthropic translation of the newer chat features: strict and legacy and custom tools, allowed tools,
reasoning (``reasoning_effort`` → thinking, thinking blocks both ways), and tool calls with empty input."""

from __future__ import annotations

from typing import Any

import pytest

from ailb.errors import InvalidRequestError
from ailb.providers.anthropic import request as translate
from ailb.providers.anthropic import response
from ailb.providers.anthropic.stream import AnthropicStream
from ailb.providers.canonical import ChunkWriter

from .streams import assembled_tool_calls, feed_sse, payloads, sse_bytes

FUNCTION = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WEATHER_TOOL = {"type": "function", "function": FUNCTION}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}
SQL_TOOL = {"type": "custom", "custom": {"name": "run_sql", "format": {"type": "text"}}}
SIGNED = {"type": "thinking", "thinking": "Paris is warm", "signature": "sig-1"}
REDACTED = {"type": "redacted_thinking", "data": "opaque"}


def build(body: dict[str, Any], default_max_tokens: int = 4096) -> dict[str, Any]:
    return translate.build_request(body, "claude-x", False, default_max_tokens)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "public", "messages": list(messages) or [{"role": "user", "content": "Hi"}], **extra}


# --- tools ---------------------------------------------------------------------------------------------------
def test_strict_is_forwarded_only_when_true() -> None:
    strict = {"type": "function", "function": {**FUNCTION, "strict": True}}
    loose = {"type": "function", "function": {**FUNCTION, "name": "loose", "strict": False}}
    tools = build(chat(tools=[strict, loose, TIME_TOOL]))["tools"]
    assert tools[0]["strict"] is True
    assert "strict" not in tools[1] and "strict" not in tools[2]


def test_legacy_functions_become_tools_with_one_call_at_a_time() -> None:
    out = build(chat(functions=[FUNCTION], function_call={"name": "get_weather"}))
    assert out["tools"] == [
        {"name": "get_weather", "description": "Weather in a city", "input_schema": FUNCTION["parameters"]}
    ]
    assert out["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert build(chat(functions=[FUNCTION], function_call="none"))["tool_choice"] == {"type": "none"}
    assert build(chat(functions=[FUNCTION]))["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_tools_and_functions_together_are_refused() -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(tools=[WEATHER_TOOL], functions=[FUNCTION]))
    assert info.value.param == "functions"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [WEATHER_TOOL, SQL_TOOL]}, "tools[1]"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "custom", "custom": {"name": "run_sql"}}}, "tool_choice"),
        (
            {
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [SQL_TOOL]}},
            },
            "tool_choice",
        ),
    ],
)
def test_custom_tools_are_refused_naming_the_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(**extra))
    assert info.value.param == param and info.value.status == 400


def test_custom_tool_calls_in_the_history_are_refused() -> None:
    call = {"type": "custom", "id": "call_1", "custom": {"name": "run_sql", "input": "SELECT 1"}}
    with pytest.raises(InvalidRequestError) as info:
        build(chat({"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [call]}))
    assert info.value.param == "messages"


@pytest.mark.parametrize(("mode", "choice"), [("auto", "auto"), ("required", "any")])
def test_allowed_tools_offer_only_those_tools(mode: str, choice: str) -> None:
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": mode, "tools": [{"type": "function", "function": {"name": "get_time"}}]},
    }
    out = build(chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=allowed))
    assert [tool["name"] for tool in out["tools"]] == ["get_time"]
    assert out["tool_choice"] == {"type": choice}


def test_allowed_tools_may_name_tools_the_responses_way() -> None:
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "name": "get_time"}]},
    }
    assert [tool["name"] for tool in build(chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=allowed))["tools"]] == [
        "get_time"
    ]


def test_allowed_tools_naming_an_unknown_tool_are_refused() -> None:
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "nope"}}]},
    }
    with pytest.raises(InvalidRequestError, match="nope") as info:
        build(chat(tools=[WEATHER_TOOL], tool_choice=allowed))
    assert info.value.param == "tool_choice"


def test_legacy_function_call_history_becomes_a_tool_use_and_its_result() -> None:
    out = build(
        chat(
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {"role": "function", "name": "get_weather", "content": "sunny"},
            functions=[FUNCTION],
        )
    )
    use = out["messages"][1]["content"][0]
    result = out["messages"][2]["content"][0]
    assert use["type"] == "tool_use" and use["input"] == {"city": "Paris"} and use["name"] == "get_weather"
    assert result == {"type": "tool_result", "tool_use_id": use["id"], "content": "sunny"}


def test_a_function_message_without_its_call_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat({"role": "user", "content": "Hi"}, {"role": "function", "name": "f", "content": "x"}))
    assert info.value.param == "messages"


# --- reasoning: request ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("effort", "budget"), [("low", 1024), ("medium", 2048), ("high", 4096), ("xhigh", 8192), ("max", 16384)]
)
def test_reasoning_effort_becomes_a_thinking_budget_on_top_of_the_default_cap(effort: str, budget: int) -> None:
    out = build(chat(reasoning_effort=effort, temperature=0.2, top_p=0.5), default_max_tokens=1000)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == 1000 + budget
    assert "temperature" not in out and "top_p" not in out


def test_reasoning_budget_stays_below_the_clients_cap() -> None:
    out = build(chat(reasoning_effort="high", max_completion_tokens=3000))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2999} and out["max_tokens"] == 3000
    assert build(chat(reasoning_effort="low", max_tokens=8000))["thinking"]["budget_tokens"] == 1024


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_no_thinking_for_none_or_minimal(effort: str) -> None:
    out = build(chat(reasoning_effort=effort, temperature=0.3))
    assert "thinking" not in out and out["temperature"] == 0.3 and out["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"reasoning_effort": "low", "max_tokens": 1024}, "max_completion_tokens"),
        ({"reasoning_effort": "low", "tools": [WEATHER_TOOL], "tool_choice": "required"}, "tool_choice"),
        (
            {
                "reasoning_effort": "low",
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            },
            "tool_choice",
        ),
    ],
)
def test_reasoning_requests_claude_cannot_serve_are_refused(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        build(chat(**extra))
    assert info.value.param == param


def test_thinking_blocks_go_back_first_in_their_turn_and_unsigned_reasoning_does_not() -> None:
    out = build(
        chat(
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "Sunny.",
                "reasoning_content": "Paris is warm",
                "thinking_blocks": [SIGNED, REDACTED],
            },
            {"role": "user", "content": "Tomorrow?"},
            {"role": "assistant", "content": "Also sunny.", "reasoning_content": "unsigned, from elsewhere"},
            {"role": "user", "content": "Thanks"},
            reasoning_effort="low",
        )
    )
    assert out["messages"][1]["content"] == [SIGNED, REDACTED, {"type": "text", "text": "Sunny."}]
    assert out["messages"][3]["content"] == [{"type": "text", "text": "Also sunny."}]


# --- reasoning and legacy functions: answers ---------------------------------------------------------------------
def message(content: list[dict[str, Any]], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def test_thinking_becomes_reasoning_content_and_signed_blocks() -> None:
    done = response.completion_from_response(
        message([SIGNED, REDACTED, {"type": "text", "text": "Sunny."}]), "claude-x", "dep"
    )
    body_message = done.body["choices"][0]["message"]
    assert body_message["content"] == "Sunny." and body_message["reasoning_content"] == "Paris is warm"
    assert body_message["thinking_blocks"] == [SIGNED, REDACTED]
    assert done.text == "Sunny."


def test_legacy_functions_get_their_call_back_as_function_call() -> None:
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    done = response.completion_from_response(message([tool_use], "tool_use"), "claude-x", "dep", legacy_functions=True)
    choice = done.body["choices"][0]
    assert choice["finish_reason"] == "function_call"
    assert choice["message"]["function_call"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert "tool_calls" not in choice["message"] and choice["message"]["content"] is None


# --- streams ----------------------------------------------------------------------------------------------------
def start() -> dict[str, Any]:
    return {"type": "message_start", "message": {**message([]), "stop_reason": None}}


def end(stop_reason: str) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    ]


def tool_use(index: int, call_id: str, *fragments: str) -> list[dict[str, Any]]:
    block = {"type": "tool_use", "id": call_id, "name": "now", "input": {}}
    deltas = [
        {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": f}}
        for f in fragments
    ]
    return [
        {"type": "content_block_start", "index": index, "content_block": block},
        *deltas,
        {"type": "content_block_stop", "index": index},
    ]


async def test_streamed_tool_call_with_empty_input_has_empty_object_arguments() -> None:
    events = [start(), *tool_use(0, "toolu_a"), *tool_use(1, "toolu_b", "", '{"x":', " 1}"), *end("tool_use")]
    state = AnthropicStream("claude-x", include_usage=False, deployment="dep")
    calls = assembled_tool_calls(payloads(await feed_sse(state, sse_bytes(events))))
    assert calls[0] == {"id": "toolu_a", "name": "now", "arguments": "{}"}
    assert calls[1] == {"id": "toolu_b", "name": "now", "arguments": '{"x": 1}'}


async def test_streamed_thinking_becomes_reasoning_deltas_then_the_signed_block() -> None:
    events = [
        start(),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Paris "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "is warm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-1"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": REDACTED},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Sunny."}},
        {"type": "content_block_stop", "index": 2},
        *end("end_turn"),
    ]
    state = AnthropicStream("claude-x", include_usage=False, deployment="dep")
    chunks = await feed_sse(state, sse_bytes(events))
    deltas = [obj["choices"][0]["delta"] for obj in payloads(chunks) if obj["choices"]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "Paris is warm"
    assert [b for d in deltas for b in d.get("thinking_blocks") or ()] == [SIGNED, REDACTED]
    assert "".join(c.text for c in chunks) == "Sunny."
    assert chunks[1].has_content  # reasoning is shown to the client: it commits the stream


async def test_legacy_functions_stream_function_call_deltas() -> None:
    events = [start(), *tool_use(0, "toolu_a", '{"x":', " 1}"), *end("tool_use")]
    writer = ChunkWriter("claude-x", False, legacy_functions=True)
    state = AnthropicStream("claude-x", include_usage=False, deployment="dep", writer=writer)
    objs = payloads(await feed_sse(state, sse_bytes(events)))
    deltas = [obj["choices"][0]["delta"] for obj in objs if obj["choices"]]
    assert all("tool_calls" not in delta for delta in deltas)
    calls = [delta["function_call"] for delta in deltas if "function_call" in delta]
    assert calls[0] == {"name": "now", "arguments": ""}
    assert "".join(call["arguments"] for call in calls) == '{"x": 1}'
    assert [obj["choices"][0]["finish_reason"] for obj in objs if obj["choices"]][-1] == "function_call"
