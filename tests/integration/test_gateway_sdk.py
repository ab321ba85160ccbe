"""The official OpenAI SDK talking through the real gateway to each of the three wire-level fakes."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import MODELS, Upstreams

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def gateway(run_gateway: GatewayFactory, upstreams: Upstreams) -> RunningGateway:
    upstreams.reset()
    return run_gateway({**upstreams.env(), "ROUTING_STRATEGY": "failover"})


def _client(gateway: RunningGateway, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=kwargs.pop("api_key", "unused"), max_retries=0, **kwargs)


@pytest.mark.parametrize("provider", list(MODELS))
def test_plain_completion_through_each_provider(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].set_reply(f"plain answer from {provider}")
    raw = _client(gateway).chat.completions.with_raw_response.create(
        model=MODELS[provider],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],
        max_tokens=50,
        temperature=0.3,
        extra_body={"session_id": "not-forwarded"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == f"plain answer from {provider}"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.object == "chat.completion"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-ailb-provider"] == provider
    assert raw.headers["x-ailb-deployment"] == provider
    assert raw.headers["x-ailb-attempts"] == "1"
    sent = upstreams[provider].last_request_json()
    assert "session_id" not in json.dumps(sent)


@pytest.mark.parametrize("provider", list(MODELS))
def test_streaming_through_each_provider(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].set_reply("one two three four five")
    stream = _client(gateway).chat.completions.create(
        model=MODELS[provider],
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    texts: list[str] = []
    usage = None
    finish = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            texts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(texts) == "one two three four five"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("provider", list(MODELS))
def test_stream_without_include_usage_has_no_usage_chunk(
    gateway: RunningGateway, upstreams: Upstreams, provider: str
) -> None:
    chunks = list(
        _client(gateway).chat.completions.create(
            model=MODELS[provider], messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert chunks and all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize("provider", list(MODELS))
def test_tool_calls_plain_and_streamed(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].set_tool_call("get_weather", '{"city": "Paris"}')
    client = _client(gateway)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    completion = client.chat.completions.create(model=MODELS[provider], messages=messages, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    stream = client.chat.completions.create(
        model=MODELS[provider], messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    names: list[str] = []
    arguments: list[str] = []
    finish = None
    for chunk in stream:
        for c in chunk.choices:
            for delta in c.delta.tool_calls or []:
                if delta.function and delta.function.name:
                    names.append(delta.function.name)
                if delta.function and delta.function.arguments:
                    arguments.append(delta.function.arguments)
            finish = c.finish_reason or finish
    assert names == ["get_weather"]
    assert json.loads("".join(arguments)) == {"city": "Paris"}
    assert finish == "tool_calls"

    # The tool result goes back as a `tool` message and the provider sees it in its own wire format.
    upstreams[provider].set_reply("It is sunny in Paris.")
    follow_up = client.chat.completions.create(
        model=MODELS[provider],
        messages=[
            *messages,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert follow_up.choices[0].message.content == "It is sunny in Paris."
    assert "sunny, 21C" in json.dumps(upstreams[provider].last_request_json())


async def test_async_client_plain_and_streaming(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["anthropic"].set_reply("async hello")
    client = openai.AsyncOpenAI(base_url=gateway.v1, api_key="unused", max_retries=0)
    completion = await client.chat.completions.create(
        model=MODELS["anthropic"], messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "async hello"
    stream = await client.chat.completions.create(
        model=MODELS["anthropic"], messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "async hello"
    await client.close()


def test_models_list_every_model_with_its_provider(gateway: RunningGateway) -> None:
    models = {m.id: m.owned_by for m in _client(gateway).models.list()}
    assert models[MODELS["openai"]] == "openai"
    assert models[MODELS["anthropic"]] == "anthropic"
    ollama_ids = [m for m in models if m.split(":")[0] == MODELS["ollama"]]  # Ollama lists "llama3.2:latest"
    assert ollama_ids and all(models[m] == "ollama" for m in ollama_ids)
    card = _client(gateway).models.retrieve(MODELS["anthropic"])
    assert (card.id, card.owned_by) == (MODELS["anthropic"], "anthropic")
    with pytest.raises(openai.NotFoundError):
        _client(gateway).models.retrieve("no-such-model")


def test_errors_surface_as_sdk_exceptions(gateway: RunningGateway, upstreams: Upstreams) -> None:
    client = _client(gateway)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.code == "model_not_found"
    assert upstreams.total_chat_calls() == 0

    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": "x"}], temperature=7
        )
    assert bad.value.param == "temperature"

    upstreams["openai"].fail_next_status(400, "Invalid 'messages': too long")
    with pytest.raises(openai.BadRequestError) as upstream_bad:
        client.chat.completions.create(model=MODELS["openai"], messages=[{"role": "user", "content": "x"}])
    assert "too long" in upstream_bad.value.message


def test_provider_key_never_reaches_the_client(run_gateway: GatewayFactory, upstreams: Upstreams) -> None:
    upstreams.reset()
    env = upstreams.env()
    env["OPENAI_API_KEY"] = "sk-wrong-key-that-must-not-leak"
    env.pop("ANTHROPIC_API_KEY")
    env.pop("OLLAMA_BASE_URL")
    gateway = run_gateway(env)
    with pytest.raises(openai.APIStatusError) as info:
        _client(gateway).chat.completions.create(model=MODELS["openai"], messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "sk-wrong-key" not in info.value.response.text
    assert "openai" in info.value.message


def test_client_keys_are_required_when_configured(run_gateway: GatewayFactory, upstreams: Upstreams) -> None:
    upstreams.reset()
    gateway = run_gateway({**upstreams.env(), "AILB_API_KEYS": "team-a-key,team-b-key"})
    with pytest.raises(openai.AuthenticationError):
        _client(gateway, api_key="wrong").chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": "x"}]
        )
    ok = _client(gateway, api_key="team-b-key").chat.completions.create(
        model=MODELS["openai"], messages=[{"role": "user", "content": "x"}]
    )
    assert ok.choices[0].message.content
    via_header = _client(gateway, api_key="wrong", default_headers={"Authorization": "", "x-api-key": "team-a-key"})
    assert via_header.models.list().data
