"""``POST /v1/chat/completions`` × every provider × {plain, stream, tools, errors, failover}: the canonical
surface, in the same matrix and against the same gateway as the others."""

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
    user_text,
)
from tests.integration.upstreams import Upstreams

HI: Any = [{"role": "user", "content": "Say hi"}]
TOOL: Any = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}


running, upstreams, gateway = surface_fixtures("chat")


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai_client(gateway)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
def test_plain_and_stream(client: openai.OpenAI, upstreams: Upstreams, provider: str, streamed: bool) -> None:
    upstreams[provider].fake.reply = Reply("Hi there", prompt_tokens=2, completion_tokens=2)
    if streamed:
        chunks = list(
            client.chat.completions.create(
                model=MODELS[provider], messages=HI, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        completion = client.chat.completions.create(model=MODELS[provider], messages=HI)
        text, usage = completion.choices[0].message.content or "", completion.usage
    assert text == "Hi there" and usage is not None and usage.total_tokens == 4
    assert user_text(provider, sent(upstreams, provider)[-1]) == "Say hi"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tools(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply(tool_calls=[("get_weather", PARIS)])
    completion = client.chat.completions.create(model=MODELS[provider], messages=HI, tools=[TOOL])
    call = (completion.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_errors(client: openai.OpenAI, upstreams: Upstreams, provider: str) -> None:
    fake = upstreams[provider].fake
    fake.fail_always(Fault.status(500))
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model=MODELS[provider], messages=HI)
    assert failed.value.status_code == 502
    fake.clear_faults()
    fake.reply = "one two three"
    fake.fail_next(Fault.drop_mid_stream(after_chunks=1))
    with pytest.raises(openai.APIError):
        for _chunk in client.chat.completions.create(model=MODELS[provider], messages=HI, stream=True):
            pass


def test_failover(client: openai.OpenAI, upstreams: Upstreams) -> None:
    upstreams.openai.fail_next(Fault.status(500))
    upstreams.anthropic.reply = "second"
    raw = client.chat.completions.with_raw_response.create(model=CHAIN, messages=HI)
    assert raw.parse().choices[0].message.content == "second" and raw.headers["x-ailb-provider"] == "anthropic"
