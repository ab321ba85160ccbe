"""``POST /v1/messages`` and ``/v1/messages/count_tokens`` × every provider × {plain, stream, tools, errors,
failover}, with the official Anthropic SDK (``messages.create`` and the ``messages.stream()`` helper) against the
wire-level fakes: Anthropic deployments get the client's request as it was written; the others a translation."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.fakes import Fault, Reply
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import (
    CHAIN,
    MODELS,
    PARIS,
    PROVIDERS,
    WEATHER_SCHEMA,
    anthropic_client,
    sent,
    surface_fixtures,
    system_text,
    user_text,
)
from tests.integration.upstreams import Upstreams

TOOL: Any = {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER_SCHEMA}
SYSTEM: Any = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
HI: Any = [{"role": "user", "content": [{"type": "text", "text": "Say hi", "cache_control": {"type": "ephemeral"}}]}]


running, upstreams, gateway = surface_fixtures("messages")


@pytest.fixture
def client(gateway: RunningGateway) -> anthropic.Anthropic:
    return anthropic_client(gateway)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain(client: anthropic.Anthropic, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply("Hi there", prompt_tokens=12, completion_tokens=2)
    raw = client.messages.with_raw_response.create(
        model=MODELS[provider], max_tokens=64, system=SYSTEM, messages=HI, stop_sequences=["END"],
        metadata={"user_id": "u-7"}, extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        extra_body={"temperature": 0.3},
    )  # fmt: skip
    message = raw.parse()
    assert [block.type for block in message.content] == ["text"] and message.content[0].text == "Hi there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 2)
    assert raw.headers["x-ailb-provider"] == provider
    body = sent(upstreams, provider)[-1]
    if provider == "anthropic":  # passed through: blocks and cache_control exactly as the client wrote them
        assert body == {
            "model": MODELS[provider], "max_tokens": 64, "system": SYSTEM, "messages": HI, "stop_sequences": ["END"],
            "temperature": 0.3, "metadata": {"user_id": "u-7"},
        }  # fmt: skip
    else:
        assert system_text(provider, body) == "You are terse." and user_text(provider, body) == "Say hi"
        assert "cache_control" not in str(body)
    if provider == "openai":
        assert (body["max_completion_tokens"], body["stop"], body["user"]) == (64, ["END"], "u-7")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_helper_and_event_order(client: anthropic.Anthropic, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply("one two three", prompt_tokens=6, completion_tokens=3)
    with client.messages.stream(model=MODELS[provider], max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three" and final.content[0].text == "one two three"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 3)
    events = [
        event.type for event in client.messages.create(model=MODELS[provider], max_tokens=64, messages=HI, stream=True)
    ]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    blocks = [e for e in events if e.startswith("content_block")]
    assert blocks[0] == "content_block_start" and blocks[-1] == "content_block_stop"
    assert blocks.count("content_block_delta") == 3


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
def test_tools_round_trip(client: anthropic.Anthropic, upstreams: Upstreams, provider: str, streamed: bool) -> None:
    fake = upstreams[provider].fake
    fake.reply = Reply(tool_calls=[("get_weather", PARIS)])
    ask: Any = [{"role": "user", "content": "Weather in Paris?"}]
    model = MODELS[provider]
    if streamed:
        with client.messages.stream(model=model, max_tokens=64, messages=ask, tools=[TOOL]) as stream:
            kinds = [event.type for event in stream]
            first = stream.get_final_message()
        assert "input_json" in kinds
    else:
        first = client.messages.create(
            model=model, max_tokens=64, messages=ask, tools=[TOOL], tool_choice={"type": "any"}
        )
    use = next(block for block in first.content if block.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and first.stop_reason == "tool_use"
    offered = sent(upstreams, provider)[-1]
    assert (offered["tools"][0] if provider == "anthropic" else offered["tools"][0]["function"])[
        "name"
    ] == "get_weather"
    if provider == "openai" and not streamed:
        assert offered["tool_choice"] == "required"

    fake.reply = "Sunny."
    history: Any = [
        *ask,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24C"}]},
    ]
    second = client.messages.create(model=model, max_tokens=64, messages=history, tools=[TOOL])
    assert second.content[0].text == "Sunny."  # type: ignore[union-attr]
    body = sent(upstreams, provider)[-1]
    if provider == "anthropic":
        assert body["messages"][-1]["content"][0] == {
            "type": "tool_result",
            "tool_use_id": use.id,
            "content": "sunny, 24C",
        }
    else:
        assert body["messages"][-1]["role"] == "tool" and body["messages"][-1]["content"] == "sunny, 24C"
        assert body["messages"][-2]["role"] == "assistant" and body["messages"][-2]["tool_calls"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_errors_in_anthropic_shape(client: anthropic.Anthropic, upstreams: Upstreams, provider: str) -> None:
    fake = upstreams[provider].fake
    fake.fail_next(Fault.status(400, body=fake.error_body(400, "prompt is too long")))
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=MODELS[provider], max_tokens=16, messages=HI)
    assert refused.value.body == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}
    }  # fmt: skip
    fake.fail_always(Fault.status(500))
    with pytest.raises(anthropic.InternalServerError) as failed:
        client.messages.create(model=MODELS[provider], max_tokens=16, messages=HI)
    assert failed.value.status_code == 502
    assert failed.value.body == {
        "type": "error", "error": {"type": "api_error", "message": f"Deployment '{provider}' failed with HTTP 500."}
    }  # fmt: skip


def test_unknown_models_and_bad_requests(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="claude-nonexistent", max_tokens=16, messages=HI)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as invalid:
        client.messages.create(model=MODELS["openai"], max_tokens=0, messages=HI)
    assert invalid.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in invalid.value.body["error"]["message"]  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as too_many:
        client.messages.create(model=MODELS["anthropic"], max_tokens=9000, messages=HI)  # its cap is 8,192
    assert too_many.value.body["error"]["message"].startswith("max_tokens is too large")  # type: ignore[index]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_broken_after_its_first_byte_ends_with_an_error_event(
    client: anthropic.Anthropic, upstreams: Upstreams, provider: str
) -> None:
    upstreams[provider].fake.reply = "one two three four"
    upstreams[provider].fake.fail_next(Fault.drop_mid_stream(after_chunks=1))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as broken:
        with client.messages.stream(model=MODELS[provider], max_tokens=64, messages=HI) as stream:
            seen.extend(stream.text_stream)
    assert seen == ["one"]
    error = {"type": "overloaded_error", "message": f"Deployment '{provider}' dropped the connection."}
    assert broken.value.body == {"type": "error", "error": error}


@pytest.mark.parametrize("streamed", [False, True])
def test_failover_from_a_translated_to_a_passed_through_deployment(
    client: anthropic.Anthropic, upstreams: Upstreams, streamed: bool
) -> None:
    upstreams.openai.fail_next(Fault.status(503))
    upstreams.anthropic.reply = "from Claude"
    if streamed:
        with client.messages.stream(model=CHAIN, max_tokens=64, system=SYSTEM, messages=HI) as stream:
            text = "".join(stream.text_stream)
    else:
        text = client.messages.create(model=CHAIN, max_tokens=64, system=SYSTEM, messages=HI).content[0].text  # type: ignore[union-attr]
    assert text == "from Claude"
    assert len(sent(upstreams, "openai")) == 1 and sent(upstreams, "anthropic")[-1]["system"] == SYSTEM


def test_failover_to_a_translated_deployment(client: anthropic.Anthropic, upstreams: Upstreams) -> None:
    upstreams.openai.fail_next(Fault.drop())
    upstreams.anthropic.fail_next(Fault.status(529))
    upstreams.ollama.reply = "from Ollama"
    raw = client.messages.with_raw_response.create(model=CHAIN, max_tokens=64, messages=HI)
    assert raw.parse().content[0].text == "from Ollama"  # type: ignore[union-attr]
    assert raw.headers["x-ailb-provider"] == "ollama" and raw.headers["x-ailb-attempts"] == "3"


def test_what_only_anthropic_takes_goes_to_anthropic_or_is_refused(
    client: anthropic.Anthropic, upstreams: Upstreams
) -> None:
    upstreams.anthropic.reply = "top-k honoured"
    answer = client.messages.create(model=CHAIN, max_tokens=64, messages=HI, extra_body={"top_k": 5})
    assert answer.content[0].text == "top-k honoured"  # type: ignore[union-attr]
    assert sent(upstreams, "openai") == [] and sent(upstreams, "anthropic")[-1]["top_k"] == 5
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=MODELS["openai"], max_tokens=64, messages=HI, extra_body={"top_k": 5})
    assert "`top_k`" in refused.value.body["error"]["message"]  # type: ignore[index]
    server_tool: Any = {"type": "web_search_20250305", "name": "web_search"}
    with pytest.raises(anthropic.BadRequestError) as no_tool:
        client.messages.create(model=MODELS["ollama"], max_tokens=64, messages=HI, tools=[server_tool])
    assert "web_search_20250305" in no_tool.value.body["error"]["message"]  # type: ignore[index]
    assert sent(upstreams, "ollama") == []


def test_thinking_for_every_provider(client: anthropic.Anthropic, upstreams: Upstreams) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    upstreams.ollama.reply = Reply("4", reasoning="Two and two.")
    answer = client.messages.create(model=MODELS["ollama"], max_tokens=4096, messages=HI, thinking=thinking)
    assert [block.type for block in answer.content] == ["thinking", "text"]
    assert answer.content[0].thinking == "Two and two." and answer.content[0].signature == ""  # type: ignore[union-attr]
    assert sent(upstreams, "ollama")[-1]["think"] is True
    # Sent back to Claude, the unsigned block (which Claude would refuse) is left out; signed ones pass.
    upstreams.anthropic.reply = Reply("8", reasoning="Four and four.")
    history: Any = [
        *HI, {"role": "assistant", "content": [block.model_dump() for block in answer.content]},
        {"role": "user", "content": "And four and four?"},
    ]  # fmt: skip
    again = client.messages.create(model=MODELS["anthropic"], max_tokens=4096, messages=history, thinking=thinking)
    assert again.content[0].type == "thinking" and again.content[0].signature  # type: ignore[union-attr]
    assert [b["type"] for b in sent(upstreams, "anthropic")[-1]["messages"][1]["content"]] == ["text"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_count_tokens(client: anthropic.Anthropic, upstreams: Upstreams, provider: str) -> None:
    raw = client.messages.with_raw_response.count_tokens(
        model=MODELS[provider], system="Be brief", messages=[{"role": "user", "content": "one two three four"}],
        tools=[TOOL],
    )  # fmt: skip
    counted = raw.parse().input_tokens
    counts = [r for r in upstreams.anthropic.requests if r.path == "/v1/messages/count_tokens"]
    if provider == "anthropic":
        assert raw.headers["x-ailb-token-count"] == "upstream" and counted == 6  # the fake counts words
        assert counts[-1].json["tools"] == [TOOL] and counts[-1].json["model"] == MODELS[provider]
    else:
        assert raw.headers["x-ailb-token-count"] == "estimate" and counted > 6 and counts == []
    assert sent(upstreams, provider) == []
