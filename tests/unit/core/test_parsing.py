from __future__ import annotations

from typing import Any

import pytest

from ailb.errors import InvalidRequestError
from ailb.http.parsing import parse_json_object
from ailb.ingress.chat.request import validate_chat


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_ailb_fields_are_split_off_and_never_forwarded() -> None:
    body = _body(session_id="s-1", rag_collection=["a", "b"], rag_top_k=5, routing_strategy="random", foo=1)
    call = validate_chat(body, "tenant", None, None)
    assert call.session_id == "s-1"
    assert call.rag_collections == ("a", "b")
    assert call.rag_top_k == 5
    assert call.strategy == "random"
    assert "session_id" not in call.body and "rag_collection" not in call.body and "routing_strategy" not in call.body
    assert call.body["foo"] == 1  # unknown fields pass through


def test_header_session_and_strategy() -> None:
    call = validate_chat(_body(stream=True, stream_options={"include_usage": True}), "t", "abc:1", "failover")
    assert call.session_id == "abc:1" and call.strategy == "failover"
    assert call.stream and call.include_usage
    with pytest.raises(InvalidRequestError) as info:
        validate_chat(_body(), "t", "bad id!", None)
    assert info.value.param == "session_id"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, None),
        (_body(temperature=3), "temperature"),
        (_body(messages=[]), "messages"),
        (_body(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0]"),
        (_body(session_id="x" * 129), "session_id"),
        (_body(rag_top_k=51), "rag_top_k"),
        (_body(n=0), "n"),
        (_body(tools=[{"type": "function", "function": {"name": "bad name"}}]), "tools[0].function.name"),
        (_body(tools=[{"type": "custom", "function": {"name": "f"}}]), "tools[0]"),
        (
            _body(tools=[{"type": "custom", "custom": {"name": "f", "format": {"type": "grammar"}}}]),
            "tools[0].custom.format",
        ),
        (
            _body(tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "sometimes", "tools": []}}),
            "tool_choice.allowed_tools.mode",
        ),
        (_body(tool_choice={"type": "allowed_tools"}), "tool_choice"),
        (_body(functions=[{"name": "bad name"}]), "functions[0].name"),
        (_body(function_call="always"), "function_call"),
    ],
)
def test_schema_violations_name_the_param(body: dict[str, Any], param: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_chat(body, "t", None, None)
    assert info.value.status == 400
    if param is not None:
        assert info.value.param == param


def test_full_schema_is_accepted() -> None:
    body = _body(
        messages=[
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        temperature=0.2,
        top_p=0.9,
        max_tokens=10,
        max_completion_tokens=12,
        stop=["x"],
        n=1,
        seed=7,
        response_format={"type": "json_object"},
        user="u1",
    )
    call = validate_chat(body, "t", None, None)
    assert call.max_tokens == 12
    assert len(call.body["messages"]) == 4


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,2]", b"nul", b"[" * 100_000 + b"]" * 100_000])
def test_bad_json_is_a_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_json_object(raw)
    assert info.value.code == "invalid_json"


def test_a_trailing_newline_is_not_a_valid_session_id() -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_chat(_body(session_id="sess\n"), "t", None, None)
    assert info.value.param == "session_id"


@pytest.mark.parametrize("field", ["api_key", "base_url", "api_base", "extra_headers", "organization", "API-Key"])
def test_client_credentials_and_endpoints_are_refused(field: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        validate_chat(_body(**{field: "x"}), "t", None, None)
    assert refused.value.param == field and refused.value.code == "unsupported_parameter"
    assert refused.value.status == 400


def test_current_openai_tool_shapes_are_accepted_and_passed_unchanged() -> None:
    custom = {"type": "custom", "custom": {"name": "run_sql", "description": "SQL", "format": {"type": "text"}}}
    grammar = {
        "type": "custom",
        "custom": {
            "name": "calc",
            "format": {"type": "grammar", "grammar": {"definition": "start: NUMBER", "syntax": "lark"}},
        },
    }
    function = {"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object"}}}
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "custom", "custom": {"name": "calc"}}]},
    }
    history = [
        {"role": "user", "content": "1+1?"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "calc", "input": "1+1"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "2"},
        {
            "role": "assistant",
            "content": "2",
            "reasoning_content": "easy",
            "thinking_blocks": [{"type": "thinking", "thinking": "easy", "signature": "s"}],
        },
    ]
    body = _body(messages=history, tools=[custom, grammar, function], tool_choice=allowed, reasoning_effort="high")
    call = validate_chat(body, "t", None, None)
    assert call.body["tools"] == [custom, grammar, function]
    assert call.body["tool_choice"] == allowed and call.body["messages"] == history
    named = validate_chat(
        _body(tools=[custom], tool_choice={"type": "custom", "custom": {"name": "run_sql"}}), "t", None, None
    )
    assert named.body["tool_choice"] == {"type": "custom", "custom": {"name": "run_sql"}}


def test_legacy_functions_are_accepted() -> None:
    body = _body(functions=[{"name": "f", "parameters": {"type": "object"}}], function_call={"name": "f"})
    assert validate_chat(body, "t", None, None).body["function_call"] == {"name": "f"}
