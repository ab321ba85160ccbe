"""``POST /v1/responses`` × every provider × {plain, stream, tools, errors, failover}, with the official OpenAI SDK
(``responses.create`` and the ``responses.stream()`` helper) against the wire-level fakes: what the client
receives, and what each upstream received."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes import Fault, Reply
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import (
    CHAIN,
    MODELS,
    PARIS,
    PROVIDERS,
    WEATHER_SCHEMA,
    openai_client,
    sent,
    surface_fixtures,
    system_text,
    user_text,
)
from tests.integration.upstreams import Upstreams

WEATHER_TOOL: Any = {"type": "function", "name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA}


running, upstreams, gateway = surface_fixtures("responses")


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai_client(gateway)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply("Bonjour tout le monde", prompt_tokens=9, completion_tokens=4)
    raw = client.responses.with_raw_response.create(
        model=MODELS[provider], input="Say hello", instructions="Answer in French", max_output_tokens=50,
        temperature=0.5, metadata={"ticket": "42"},
    )  # fmt: skip
    response = raw.parse()
    assert response.output_text == "Bonjour tout le monde"
    assert response.status == "completed" and response.model == MODELS[provider]
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (9, 4)
    assert response.metadata == {"ticket": "42"} and response.store is False
    assert raw.headers["x-ailb-provider"] == provider and raw.headers["x-ailb-deployment"] == provider
    body = sent(upstreams, provider)[-1]
    assert user_text(provider, body) == "Say hello"
    assert system_text(provider, body) == "Answer in French"
    assert "metadata" not in body and "instructions" not in body
    if provider == "openai":
        assert body["max_completion_tokens"] == 50 and body["temperature"] == 0.5
    elif provider == "anthropic":
        assert body["max_tokens"] == 50 and body["temperature"] == 0.5
    else:
        assert body["options"]["num_predict"] == 50 and body["options"]["temperature"] == 0.5


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_helper_assembles_the_answer(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply("one two three", prompt_tokens=5, completion_tokens=3)
    with client.responses.stream(model=MODELS[provider], input=[{"role": "user", "content": "Count"}]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"
    ]  # fmt: skip
    assert kinds[-4:] == [
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"
    ]  # fmt: skip
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three" and len(deltas) == 3
    assert final.output_text == "one two three" and final.status == "completed"
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (5, 3)
    assert sent(upstreams, provider)[-1].get("stream", True) is True


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
def test_function_tools_round_trip(client: openai.OpenAI, upstreams: Upstreams, provider: str, streamed: bool) -> None:
    fake = upstreams[provider].fake
    fake.reply = Reply(tool_calls=[("get_weather", PARIS)])
    model = MODELS[provider]
    if streamed:
        with client.responses.stream(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
            added = [e.item.type for e in stream if e.type == "response.output_item.added"]
            first = stream.get_final_response()
        assert added == ["function_call"]
    else:
        first = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    offered = sent(upstreams, provider)[-1]["tools"][0]
    assert (offered["name"] if provider == "anthropic" else offered["function"]["name"]) == "get_weather"

    fake.reply = "It is sunny in Paris."
    call = calls[0]
    follow_up: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24C"},
    ]
    second = client.responses.create(model=model, input=follow_up, tools=[WEATHER_TOOL])
    assert second.output_text == "It is sunny in Paris."
    expected_id = None if provider == "ollama" else call.call_id
    assert tool_result(provider, sent(upstreams, provider)[-1]) == (expected_id, "sunny, 24C")


def tool_result(provider: str, body: dict[str, Any]) -> tuple[str | None, str]:
    """The (call id, output) of the tool result the upstream received (Ollama has no call ids)."""
    if provider == "anthropic":
        block = next(b for b in body["messages"][-1]["content"] if b["type"] == "tool_result")
        return block["tool_use_id"], block["content"]
    message = body["messages"][-1]
    assert message["role"] == "tool"
    return (message.get("tool_call_id") if provider == "openai" else None) or None, message["content"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_structured_output_is_asked_the_providers_way(
    client: openai.OpenAI, upstreams: Upstreams, provider: str
) -> None:
    upstreams[provider].fake.reply = '{"city": "Paris"}'
    text = {"format": {"type": "json_schema", "name": "city", "schema": WEATHER_SCHEMA, "strict": True}}
    response = client.responses.create(model=MODELS[provider], input="Which city?", text=text)  # type: ignore[arg-type]
    assert json.loads(response.output_text) == {"city": "Paris"}
    body = sent(upstreams, provider)[-1]
    if provider == "openai":
        assert body["response_format"]["json_schema"]["schema"] == WEATHER_SCHEMA
    elif provider == "anthropic":
        assert "JSON schema" in body["system"]
    else:
        assert body["format"] == WEATHER_SCHEMA


@pytest.mark.parametrize("provider", PROVIDERS)
def test_upstream_errors_in_openai_shape(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    fake = upstreams[provider].fake
    fake.fail_next(Fault.status(400, body=fake.error_body(400, "prompt is too long")))
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODELS[provider], input="hi")
    assert "prompt is too long" in refused.value.message
    fake.fail_always(Fault.status(500))
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(model=MODELS[provider], input="hi")
    assert failed.value.status_code == 502 and failed.value.body["type"] == "upstream_error"  # type: ignore[index]
    assert f"Deployment '{provider}' failed with HTTP 500" in failed.value.message


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_broken_after_its_first_byte_ends_with_an_error(
    client: openai.OpenAI, upstreams: Upstreams, provider: str
) -> None:
    upstreams[provider].fake.reply = "one two three four"
    upstreams[provider].fake.fail_next(Fault.drop_mid_stream(after_chunks=1))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as broken:
        with client.responses.stream(model=MODELS[provider], input="count") as stream:
            seen.extend(event.type for event in stream)
    assert broken.value.message == f"Deployment '{provider}' dropped the connection."
    assert "response.output_text.delta" in seen and "response.completed" not in seen


@pytest.mark.parametrize("streamed", [False, True])
def test_failover_to_the_next_provider(client: openai.OpenAI, upstreams: Upstreams, streamed: bool) -> None:
    upstreams.openai.fail_next(Fault.status(503))
    upstreams.anthropic.fail_next(Fault.drop())
    upstreams.ollama.reply = "from the last one"
    if streamed:
        with client.responses.stream(model=CHAIN, input="hi") as stream:
            final = stream.get_final_response()
    else:
        raw = client.responses.with_raw_response.create(model=CHAIN, input="hi")
        final = raw.parse()
        assert raw.headers["x-ailb-attempts"] == "3" and raw.headers["x-ailb-provider"] == "ollama"
    assert final.output_text == "from the last one" and final.model == CHAIN
    assert [len(sent(upstreams, p)) for p in PROVIDERS] == [1, 1, 1]


def test_reasoning_round_trips_claudes_signed_thinking(client: openai.OpenAI, upstreams: Upstreams) -> None:
    upstreams.anthropic.reply = Reply("42", reasoning="Six times seven.", tool_calls=[("get_weather", PARIS)])
    first = client.responses.create(
        model=MODELS["anthropic"], input="Think", reasoning={"effort": "low", "summary": "auto"}, tools=[WEATHER_TOOL]
    )
    assert sent(upstreams, "anthropic")[-1]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    reasoning = next(item for item in first.output if item.type == "reasoning")
    assert reasoning.summary[0].text == "Six times seven." and reasoning.encrypted_content
    call = next(item for item in first.output if item.type == "function_call")
    replay: Any = [
        {"role": "user", "content": "Think"},
        reasoning.model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    client.responses.create(model=MODELS["anthropic"], input=replay, reasoning={"effort": "low"}, tools=[WEATHER_TOOL])
    assistant = sent(upstreams, "anthropic")[-1]["messages"][1]
    assert assistant["content"][0]["type"] == "thinking" and assistant["content"][0]["signature"]
    assert assistant["content"][-1]["type"] == "tool_use"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"background": True}, "background"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"api_key": "sk-mine"}, "api_key"),
    ],
)
def test_what_cannot_be_served_is_refused_by_name(client: openai.OpenAI, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODELS["openai"], input="hi", extra_body=extra)
    assert refused.value.body["param"] == param  # type: ignore[index]
    assert refused.value.body["code"] == "unsupported_parameter"  # type: ignore[index]


def test_a_cap_above_every_deployments_names_max_output_tokens(client: openai.OpenAI, upstreams: Upstreams) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODELS["openai"], input="hi", max_output_tokens=1_000_000)
    assert refused.value.body["param"] == "max_output_tokens"  # type: ignore[index]
    assert sent(upstreams, "openai") == []


def test_stored_responses_are_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_123")
    assert "does not store responses" in missing.value.message
