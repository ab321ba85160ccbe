"""The chat-completions features every provider now serves, through the real gateway with the official OpenAI
SDK against the wire-level fakes: what the client receives and what the upstream received.

``n > 1`` and legacy functions for Anthropic and Ollama, current OpenAI tool shapes (custom tools, allowed
tools), Ollama logprobs, empty streamed tool input, reasoning on every provider, prompt-cache counts and
their price, and ``strict`` tools for Anthropic."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.fakes import Fault, Reply
from tests.fakes.anthropic_fake import thinking_signature
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import openai_client, sent
from tests.integration.upstreams import MODELS, Upstreams

EMULATED = ["anthropic", "ollama"]
HI: Any = [{"role": "user", "content": "Weather in Paris?"}]
FUNCTION: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SQL_TOOL: Any = {"type": "custom", "custom": {"name": "run_sql", "description": "Run SQL", "format": {"type": "text"}}}


@pytest.fixture
def gateway(run_gateway: GatewayFactory, upstreams: Upstreams) -> RunningGateway:
    upstreams.reset()
    for fake in (upstreams.openai, upstreams.anthropic, upstreams.ollama):
        fake.requests.clear()
    return run_gateway({**upstreams.env(), "ROUTING_STRATEGY": "failover", "HEALTH_CHECK_INTERVAL": "0"})


# --- n > 1 -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", EMULATED)
def test_n_choices_plain(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = Reply("Sunny and warm", prompt_tokens=7, completion_tokens=3)
    raw = openai_client(gateway).chat.completions.with_raw_response.create(
        model=MODELS[provider], messages=HI, n=3, seed=5
    )
    completion = raw.parse()
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert all(choice.message.content == "Sunny and warm" for choice in completion.choices)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 9)
    assert raw.headers["x-ailb-attempts"] == "1"
    bodies = sent(upstreams, provider)
    assert len(bodies) == 3 and all("n" not in body for body in bodies)
    if provider == "ollama":
        assert sorted(body["options"]["seed"] for body in bodies) == [5, 6, 7]


@pytest.mark.parametrize("provider", EMULATED)
def test_n_choices_streamed_with_their_index_and_summed_usage(
    gateway: RunningGateway, upstreams: Upstreams, provider: str
) -> None:
    upstreams[provider].fake.reply = Reply("one two three", prompt_tokens=4, completion_tokens=3)
    stream = openai_client(gateway).chat.completions.create(
        model=MODELS[provider], messages=HI, n=2, stream=True, stream_options={"include_usage": True}
    )
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    usages = []
    ids = set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usages.append(chunk.usage)
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {0: "one two three", 1: "one two three"} and finishes == {0: "stop", 1: "stop"}
    assert len(ids) == 1
    assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == [(8, 6)]
    assert len(sent(upstreams, provider)) == 2


def test_n_choices_fail_over_as_one_attempt(gateway: RunningGateway, upstreams: Upstreams) -> None:
    fake = upstreams.anthropic
    fake.fail_next(Fault.status(500))
    raw = openai_client(gateway).chat.completions.with_raw_response.create(model=MODELS["anthropic"], messages=HI, n=2)
    assert len(raw.parse().choices) == 2
    assert raw.headers["x-ailb-attempts"] == "2"


def test_a_choice_failing_after_the_first_content_ends_the_stream_with_an_error(
    gateway: RunningGateway, upstreams: Upstreams
) -> None:
    fake = upstreams.ollama
    fake.reply = " ".join(f"w{i}" for i in range(30))
    fake.stream_chunk_delay = 0.01
    fake.fail_next(Fault.error_event(after_chunks=3))
    body = {"model": MODELS["ollama"], "messages": HI, "n": 2, "stream": True}
    with httpx.Client(timeout=30) as http:
        text = http.post(gateway.v1 + "/chat/completions", json=body).text
    assert '"content":"w0"' in text.replace(" ", "")
    assert "event: error" in text and "[DONE]" not in text


# --- legacy functions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", EMULATED)
def test_legacy_functions_are_translated_both_ways(
    gateway: RunningGateway, upstreams: Upstreams, provider: str
) -> None:
    upstreams[provider].set_tool_call("get_weather", '{"city": "Paris"}')
    api = openai_client(gateway)
    completion = api.chat.completions.create(
        model=MODELS[provider], messages=HI, functions=[FUNCTION], function_call={"name": "get_weather"}
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert choice.message.function_call is not None and choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == {"city": "Paris"}
    upstream_body = sent(upstreams, provider)[-1]
    names = [tool.get("name") or tool["function"]["name"] for tool in upstream_body["tools"]]
    assert names == ["get_weather"] and "functions" not in upstream_body

    stream = api.chat.completions.create(model=MODELS[provider], messages=HI, functions=[FUNCTION], stream=True)
    name, arguments, finish = "", "", None
    for chunk in stream:
        for streamed in chunk.choices:
            assert streamed.delta.tool_calls is None
            if streamed.delta.function_call is not None:
                name += streamed.delta.function_call.name or ""
                arguments += streamed.delta.function_call.arguments or ""
            finish = streamed.finish_reason or finish
    assert (name, json.loads(arguments), finish) == ("get_weather", {"city": "Paris"}, "function_call")

    upstreams[provider].set_reply("Sunny.")
    follow_up = api.chat.completions.create(
        model=MODELS[provider],
        messages=[
            *HI,
            choice.message.model_dump(exclude_none=True),
            {"role": "function", "name": "get_weather", "content": "sunny, 21C"},
        ],
        functions=[FUNCTION],
    )
    assert follow_up.choices[0].message.content == "Sunny."
    assert "sunny, 21C" in json.dumps(sent(upstreams, provider)[-1])


# --- current tool shapes ------------------------------------------------------------------------------------------
def test_custom_and_allowed_tools_pass_to_openai_unchanged(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["openai"].fake.reply = Reply(tool_calls=[("run_sql", "SELECT 1")])
    choice: Any = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [SQL_TOOL]}}
    completion = openai_client(gateway).chat.completions.create(
        model=MODELS["openai"], messages=HI, tools=[SQL_TOOL], tool_choice=choice
    )
    call: Any = (completion.choices[0].message.tool_calls or [])[0]
    assert call.type == "custom" and (call.custom.name, call.custom.input) == ("run_sql", "SELECT 1")
    upstream_body = sent(upstreams, "openai")[-1]
    assert upstream_body["tools"] == [SQL_TOOL] and upstream_body["tool_choice"] == choice


@pytest.mark.parametrize("provider", EMULATED)
def test_custom_tools_are_refused_where_they_cannot_be_expressed(
    gateway: RunningGateway, upstreams: Upstreams, provider: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client(gateway).chat.completions.create(model=MODELS[provider], messages=HI, tools=[SQL_TOOL])
    assert info.value.param == "tools[0]" and "custom" in info.value.message
    assert sent(upstreams, provider) == []


def test_a_deployment_that_cannot_express_custom_tools_is_skipped(
    run_gateway: GatewayFactory, upstreams: Upstreams
) -> None:
    upstreams.reset()
    aliases = "model_aliases:\n  mixed: [claude-3-5-haiku-latest, gpt-4o-mini]\n"
    gateway = run_gateway({**upstreams.env(), "HEALTH_CHECK_INTERVAL": "0"}, aliases)
    before = upstreams.anthropic.chat_calls
    for _ in range(4):
        raw = openai_client(gateway).chat.completions.with_raw_response.create(
            model="mixed", messages=HI, tools=[SQL_TOOL], extra_body={"routing_strategy": "round_robin"}
        )
        assert raw.headers["x-ailb-deployment"] == "openai" and raw.headers["x-ailb-attempts"] == "1"
    assert upstreams.anthropic.chat_calls == before


def test_allowed_tools_are_translated_for_anthropic(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["anthropic"].set_tool_call("get_time", "{}")
    tools: Any = [{"type": "function", "function": FUNCTION}, {"type": "function", "function": {"name": "get_time"}}]
    allowed: Any = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "get_time"}}]},
    }
    completion = openai_client(gateway).chat.completions.create(
        model=MODELS["anthropic"], messages=HI, tools=tools, tool_choice=allowed
    )
    assert completion.choices[0].message.tool_calls is not None
    upstream_body = sent(upstreams, "anthropic")[-1]
    assert [tool["name"] for tool in upstream_body["tools"]] == ["get_time"]
    assert upstream_body["tool_choice"] == {"type": "any"}


def test_strict_tools_reach_anthropic(gateway: RunningGateway, upstreams: Upstreams) -> None:
    tool: Any = {"type": "function", "function": {**FUNCTION, "strict": True}}
    openai_client(gateway).chat.completions.create(model=MODELS["anthropic"], messages=HI, tools=[tool])
    assert sent(upstreams, "anthropic")[-1]["tools"][0]["strict"] is True


def test_a_streamed_tool_call_without_input_has_empty_object_arguments(
    gateway: RunningGateway, upstreams: Upstreams
) -> None:
    upstreams["anthropic"].set_tool_call("get_time", "")
    tool: Any = {"type": "function", "function": {"name": "get_time"}}
    plain = openai_client(gateway).chat.completions.create(model=MODELS["anthropic"], messages=HI, tools=[tool])
    stream = openai_client(gateway).chat.completions.create(
        model=MODELS["anthropic"], messages=HI, tools=[tool], stream=True
    )
    arguments = "".join(
        call.function.arguments or ""
        for chunk in stream
        for choice in chunk.choices
        for call in choice.delta.tool_calls or []
        if call.function is not None
    )
    assert arguments == "{}" == (plain.choices[0].message.tool_calls or [])[0].function.arguments  # type: ignore[union-attr]


# --- logprobs -------------------------------------------------------------------------------------------------------
def test_ollama_logprobs_plain_and_streamed(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["ollama"].set_reply("Hi there")
    api = openai_client(gateway)
    completion = api.chat.completions.create(model=MODELS["ollama"], messages=HI, logprobs=True, top_logprobs=2)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [entry.token for entry in logprobs.content] == ["Hi", " there"]
    assert logprobs.content[0].bytes == list(b"Hi") and logprobs.content[0].logprob < 0
    assert [alt.token for alt in logprobs.content[0].top_logprobs] == ["Hi", "Hi~1"]
    assert sent(upstreams, "ollama")[-1]["logprobs"] is True and sent(upstreams, "ollama")[-1]["top_logprobs"] == 2

    stream = api.chat.completions.create(model=MODELS["ollama"], messages=HI, logprobs=True, stream=True)
    tokens = [
        entry.token
        for chunk in stream
        for choice in chunk.choices
        if choice.logprobs is not None
        for entry in choice.logprobs.content or []
    ]
    assert tokens == ["Hi", " there"]


# --- reasoning ------------------------------------------------------------------------------------------------------
def test_claude_thinking_round_trip(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["anthropic"].fake.reply = Reply("Sunny.", reasoning="Paris in June is warm", redacted_reasoning="opaque")
    api = openai_client(gateway)
    completion = api.chat.completions.create(model=MODELS["anthropic"], messages=HI, reasoning_effort="low")
    message: Any = completion.choices[0].message
    assert message.content == "Sunny." and message.reasoning_content == "Paris in June is warm"
    signed = {
        "type": "thinking",
        "thinking": "Paris in June is warm",
        "signature": thinking_signature("Paris in June is warm"),
    }
    assert message.thinking_blocks == [signed, {"type": "redacted_thinking", "data": "opaque"}]
    upstream_body = sent(upstreams, "anthropic")[-1]
    assert upstream_body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert upstream_body["max_tokens"] == 4096 + 1024

    stream = api.chat.completions.create(model=MODELS["anthropic"], messages=HI, reasoning_effort="low", stream=True)
    reasoning, blocks = "", []
    for chunk in stream:
        for choice in chunk.choices:
            delta: Any = choice.delta
            reasoning += getattr(delta, "reasoning_content", None) or ""
            blocks += getattr(delta, "thinking_blocks", None) or []
    assert reasoning == "Paris in June is warm" and blocks == message.thinking_blocks

    api.chat.completions.create(
        model=MODELS["anthropic"],
        messages=[*HI, message.model_dump(exclude_none=True), {"role": "user", "content": "And tomorrow?"}],
        reasoning_effort="low",
    )
    assert sent(upstreams, "anthropic")[-1]["messages"][1]["content"][:2] == message.thinking_blocks


def test_ollama_thinking_and_openai_reasoning_content(gateway: RunningGateway, upstreams: Upstreams) -> None:
    api = openai_client(gateway)
    for provider in ("ollama", "openai"):
        upstreams[provider].fake.reply = Reply("Sunny.", reasoning="warm in June")
        message: Any = (
            api.chat.completions.create(model=MODELS[provider], messages=HI, reasoning_effort="medium")
            .choices[0]
            .message
        )
        assert (message.content, message.reasoning_content) == ("Sunny.", "warm in June")
        stream = api.chat.completions.create(
            model=MODELS[provider], messages=HI, reasoning_effort="medium", stream=True
        )
        streamed = "".join(
            getattr(choice.delta, "reasoning_content", None) or "" for chunk in stream for choice in chunk.choices
        )
        assert streamed == "warm in June"
    assert sent(upstreams, "ollama")[-1]["think"] is True
    assert sent(upstreams, "openai")[-1]["reasoning_effort"] == "medium"


# --- prompt cache -----------------------------------------------------------------------------------------------------
def test_cached_tokens_are_reported(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["anthropic"].fake.reply = Reply("Hi", prompt_tokens=100, cache_read_tokens=1000, cache_write_tokens=200)
    api = openai_client(gateway)
    usage = api.chat.completions.create(model=MODELS["anthropic"], messages=HI).usage
    stream = api.chat.completions.create(
        model=MODELS["anthropic"], messages=HI, stream=True, stream_options={"include_usage": True}
    )
    streamed = [chunk.usage for chunk in stream if chunk.usage is not None]
    for reported in (usage, *streamed):
        assert reported is not None and reported.prompt_tokens == 1300
        assert reported.prompt_tokens_details is not None and reported.prompt_tokens_details.cached_tokens == 1000


def test_cache_reads_and_writes_are_priced_at_their_own_rates(
    run_gateway: GatewayFactory, upstreams: Upstreams
) -> None:
    upstreams.reset()
    config = f"""
deployments:
  - name: claude
    provider: anthropic
    base_url: {upstreams.anthropic.base_url}
    api_key: ${{ANTHROPIC_API_KEY}}
    models: [claude-3-5-haiku-latest]
    input_cost_per_1k: 1.0
    output_cost_per_1k: 2.0
client_keys:
  team-key-0000000001:
    name: team
    max_budget_usd: 1000
"""
    env = {"ANTHROPIC_API_KEY": upstreams.env()["ANTHROPIC_API_KEY"], "HEALTH_CHECK_INTERVAL": "0"}
    gateway = run_gateway(env, config)
    upstreams["anthropic"].fake.reply = Reply(
        "Hi", prompt_tokens=100, cache_read_tokens=1000, cache_write_tokens=200, completion_tokens=10
    )
    api = openai.OpenAI(base_url=gateway.v1, api_key="team-key-0000000001", max_retries=0)
    api.chat.completions.create(model=MODELS["anthropic"], messages=HI, max_tokens=10)
    # 100 uncached at 1.0, 1000 read at 0.1, 200 written at 1.25 (Claude's defaults), 10 out at 2.0, per 1k.
    expected = (100 * 1.0 + 1000 * 0.1 + 200 * 1.25 + 10 * 2.0) / 1000
    report: dict[str, Any] = api.get("/usage", cast_to=object)
    assert report["spend_usd"] == pytest.approx(expected) and report["prompt_tokens"] == 1300
    # routing stats are guarded: without an admin token, by the client keys
    guard = {"Authorization": "Bearer team-key-0000000001"}
    stats = httpx.get(gateway.url + "/api/routing/stats", headers=guard).json()["deployments"]["claude"]
    assert stats["cost_usd"] == pytest.approx(expected)
    assert stats["tokens"]["input"] == 1300 and stats["cache_tokens"] == {"read": 1000, "write": 200}
