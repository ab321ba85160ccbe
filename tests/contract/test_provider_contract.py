"""One contract every provider adapter passes against its wire-level fake.

Each case drives a real adapter over real sockets: OpenAI-shaped answers and chunks, tool calls, finish
reasons, the mapping of every upstream failure to our error tree, timeouts, honest stream ends, cancellation,
model listing and health, and no API key in any error.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import openai.types.chat as openai_types
import orjson
import pytest
import pytest_asyncio

from ailb.contract import StreamChunk, Usage
from ailb.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from ailb.providers.base import Provider
from ailb.settings import DeploymentConfig, Timeouts
from tests.fakes import AnthropicFake, Fault, OllamaFake, OpenAIFake, Reply
from tests.fakes.base import FakeProvider
from tests.polling import eventually

SHORT = Timeouts(connect=1, first_token=1, idle=1, total=5)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_ARGS = '{"city": "Paris", "unit": "celsius"}'


@dataclass(frozen=True)
class Case:
    kind: str
    fake_class: type[FakeProvider]
    adapter: str  # "module:Class"
    model: str
    api_key: str


CASES = [
    Case("openai", OpenAIFake, "ailb.providers.openai.adapter:OpenAIProvider", "gpt-4o", "sk-contract-openai-1234"),
    Case(
        "anthropic",
        AnthropicFake,
        "ailb.providers.anthropic.adapter:AnthropicProvider",
        "claude-3-5-sonnet-latest",
        "sk-ant-contract-5678",
    ),
    Case("ollama", OllamaFake, "ailb.providers.ollama.adapter:OllamaProvider", "llama3.2", "ollama-proxy-key-9012"),
]


@dataclass
class Harness:
    case: Case
    fake: FakeProvider
    config: DeploymentConfig
    provider: Provider
    _extra: list[Provider]

    def adapter(self, **changes: Any) -> Provider:
        """Another adapter of this kind, with ``changes`` to the deployment config (closed after the test)."""
        provider = _adapter_class(self.case)(replace(self.config, **changes))
        self._extra.append(provider)
        return provider

    def body(self, *messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
        chat = list(messages) or [{"role": "user", "content": "What is the weather in Paris?"}]
        return {"model": self.case.model, "messages": chat, **fields}

    async def complete(self, body: dict[str, Any] | None = None, provider: Provider | None = None) -> Any:
        return await (provider or self.provider).complete(body or self.body(), self.case.model)

    async def stream(
        self, body: dict[str, Any] | None = None, include_usage: bool = False, provider: Provider | None = None
    ) -> list[StreamChunk]:
        chunks = (provider or self.provider).stream(body or self.body(), self.case.model, include_usage)
        return [chunk async for chunk in chunks]


def _adapter_class(case: Case) -> Callable[[DeploymentConfig], Provider]:
    module_name, _, class_name = case.adapter.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            pytest.skip(f"{module_name} does not exist yet")
        raise
    adapter: Callable[[DeploymentConfig], Provider] = getattr(module, class_name)
    return adapter


@pytest_asyncio.fixture(params=CASES, ids=[case.kind for case in CASES])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    case: Case = request.param
    adapter = _adapter_class(case)
    fake = case.fake_class(api_key=case.api_key, models=[case.model])
    await fake.start()
    config = DeploymentConfig(
        name=f"{case.kind}-contract",
        provider=case.kind,
        base_url=fake.base_url,
        api_key=case.api_key,
        models=(case.model,),
        timeouts=SHORT,
    )
    extra: list[Provider] = []
    provider = adapter(config)
    try:
        yield Harness(case, fake, config, provider, extra)
    finally:
        for each in [provider, *extra]:
            await each.aclose()
        await fake.stop()


# --- helpers ----------------------------------------------------------------------------------------------------
def frames(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    """The client-visible events, each checked to be one SSE ``data:`` event holding an OpenAI
    chat.completion.chunk (a chunk's frame holds the events of one upstream read)."""
    parsed = []
    for chunk in chunks:
        if not chunk.frame:
            continue
        assert chunk.frame.endswith(b"\n\n"), chunk.frame
        for event in chunk.frame[:-2].split(b"\n\n"):
            assert event.startswith(b"data: ") and b"\n" not in event, chunk.frame
            data = event[len(b"data: ") :]
            assert data != b"[DONE]"
            obj = orjson.loads(data)
            openai_types.ChatCompletionChunk.model_validate(obj)
            assert obj["object"] == "chat.completion.chunk"
            parsed.append(obj)
    return parsed


def streamed_text(objs: list[dict[str, Any]]) -> str:
    return "".join(c["delta"].get("content") or "" for obj in objs for c in obj["choices"])


def finish_reasons(objs: list[dict[str, Any]]) -> list[str]:
    return [c["finish_reason"] for obj in objs for c in obj["choices"] if c.get("finish_reason")]


def streamed_tool_calls(objs: list[dict[str, Any]]) -> list[dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for obj in objs:
        for choice in obj["choices"]:
            for delta in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.get("id") or call["id"]
                function = delta.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
    return [calls[index] for index in sorted(calls)]


def assert_no_key(error: BaseException, key: str) -> None:
    assert isinstance(error, UpstreamError)
    assert key not in str(error)
    assert key not in json.dumps(error.to_body())
    assert key not in repr(error.args)


# --- answers --------------------------------------------------------------------------------------------------
async def test_plain_completion_is_openai_shaped(harness: Harness) -> None:
    harness.fake.reply = Reply("Sunny and mild today.", prompt_tokens=21, completion_tokens=4)
    body = harness.body(
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the weather in Paris?"}
    )
    completion = await harness.complete(body)
    data = completion.body
    openai_types.ChatCompletion.model_validate(data)
    assert isinstance(data["id"], str) and data["id"]
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert isinstance(data["model"], str) and data["model"]
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Sunny and mild today."
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (21, 4, 25)
    assert completion.text == "Sunny and mild today."
    assert completion.usage == Usage(21, 4)
    sent = json.dumps(harness.fake.chat_requests[0].json)
    assert "Be brief." in sent and "What is the weather in Paris?" in sent
    assert harness.fake.chat_calls == 1


async def test_stream_chunks_are_openai_chunks_without_usage_unless_asked(harness: Harness) -> None:
    harness.fake.reply = Reply("one two three four", prompt_tokens=9, completion_tokens=4)
    chunks = await harness.stream()
    objs = frames(chunks)
    assert streamed_text(objs) == "one two three four"
    assert "".join(chunk.text for chunk in chunks) == "one two three four"
    assert finish_reasons(objs) == ["stop"]
    assert all(obj.get("usage") is None for obj in objs)
    assert [chunk.usage for chunk in chunks if chunk.usage is not None] == [Usage(9, 4)]
    first_content = next(i for i, chunk in enumerate(chunks) if chunk.text)
    assert chunks[first_content].has_content
    assert not any(chunk.has_content for chunk in chunks[:first_content])
    assert harness.fake.chat_requests[0].json["stream"] is True


async def test_stream_usage_chunk_when_include_usage(harness: Harness) -> None:
    harness.fake.reply = Reply("one two", prompt_tokens=5, completion_tokens=2)
    objs = frames(await harness.stream(include_usage=True))
    with_usage = [obj for obj in objs if obj.get("usage")]
    assert len(with_usage) == 1
    usage_chunk = with_usage[0]
    assert usage_chunk["choices"] == []
    assert (usage_chunk["usage"]["prompt_tokens"], usage_chunk["usage"]["completion_tokens"]) == (5, 2)
    assert usage_chunk["usage"]["total_tokens"] == 7
    assert objs.index(usage_chunk) > max(i for i, obj in enumerate(objs) if finish_reasons([obj]))
    assert streamed_text(objs) == "one two"


async def test_tool_call_plain(harness: Harness) -> None:
    harness.fake.reply = Reply(tool_calls=[("get_weather", WEATHER_ARGS)])
    completion = await harness.complete(harness.body(tools=[WEATHER_TOOL]))
    openai_types.ChatCompletion.model_validate(completion.body)
    choice = completion.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["id"] and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == json.loads(WEATHER_ARGS)


async def test_tool_call_streamed(harness: Harness) -> None:
    harness.fake.reply = Reply(tool_calls=[("get_weather", WEATHER_ARGS)])
    chunks = await harness.stream(harness.body(tools=[WEATHER_TOOL]))
    objs = frames(chunks)
    (call,) = streamed_tool_calls(objs)
    assert call["id"] and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == json.loads(WEATHER_ARGS)
    assert finish_reasons(objs) == ["tool_calls"]
    assert any(chunk.has_content for chunk in chunks)


async def test_text_then_parallel_tool_calls(harness: Harness) -> None:
    calls = [("get_weather", WEATHER_ARGS), ("get_weather", '{"city": "Oslo"}')]
    harness.fake.reply = Reply("Checking both.", tool_calls=calls)
    body = harness.body(tools=[WEATHER_TOOL])
    message = (await harness.complete(body)).body["choices"][0]["message"]
    assert message["content"] == "Checking both."
    assert [json.loads(call["function"]["arguments"]) for call in message["tool_calls"]] == [
        json.loads(arguments) for _, arguments in calls
    ]
    assert len({call["id"] for call in message["tool_calls"]}) == 2
    objs = frames(await harness.stream(body))
    assert streamed_text(objs) == "Checking both."
    streamed = streamed_tool_calls(objs)
    assert [json.loads(call["arguments"]) for call in streamed] == [json.loads(arguments) for _, arguments in calls]
    assert all(call["id"] and call["name"] == "get_weather" for call in streamed)
    assert finish_reasons(objs) == ["tool_calls"]


async def test_tool_results_are_sent_in_the_upstream_form(harness: Harness) -> None:
    harness.fake.reply = "It is 18C in Paris."
    history = harness.body(
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": WEATHER_ARGS}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        tools=[WEATHER_TOOL],
    )
    completion = await harness.complete(history)
    assert completion.text == "It is 18C in Paris."
    assert "18C" in json.dumps(harness.fake.chat_requests[0].json)


@pytest.mark.parametrize("finish", ["stop", "length"])
async def test_finish_reasons(harness: Harness, finish: str) -> None:
    harness.fake.reply = Reply("a b c", finish=finish)
    completion = await harness.complete()
    assert completion.body["choices"][0]["finish_reason"] == finish
    assert finish_reasons(frames(await harness.stream())) == [finish]


async def test_max_tokens_reaches_the_upstream(harness: Harness) -> None:
    harness.fake.reply = "a b c d e f"
    completion = await harness.complete(harness.body(max_tokens=2))
    assert completion.body["choices"][0]["finish_reason"] == "length"
    assert completion.text == "a b"


# --- upstream failures ------------------------------------------------------------------------------------------
async def test_server_error_is_retryable(harness: Harness) -> None:
    harness.fake.fail_next(Fault.status(500), Fault.status(500))
    with pytest.raises(UpstreamStatusError) as plain:
        await harness.complete()
    with pytest.raises(UpstreamStatusError) as streamed:
        await harness.stream()
    for error in (plain.value, streamed.value):
        assert error.retryable and error.upstream_status == 500 and not error.misconfigured
        assert error.deployment == harness.config.name
        assert_no_key(error, harness.case.api_key)


async def test_bad_request_is_not_retryable_and_keeps_its_status(harness: Harness) -> None:
    leaky = harness.fake.error_body(400, f"Your request was malformed (key {harness.case.api_key}).")
    harness.fake.fail_next(Fault.status(400, body=leaky), Fault.status(400, body=leaky))
    with pytest.raises(UpstreamStatusError) as plain:
        await harness.complete()
    with pytest.raises(UpstreamStatusError) as streamed:
        await harness.stream()
    for error in (plain.value, streamed.value):
        assert not error.retryable
        assert error.upstream_status == 400 and error.status == 400
        assert "malformed" in error.message
        assert_no_key(error, harness.case.api_key)


async def test_rejected_credentials_mean_misconfigured(harness: Harness) -> None:
    wrong_key = harness.case.api_key + "-revoked"
    provider = harness.adapter(api_key=wrong_key)
    with pytest.raises(UpstreamStatusError) as plain:
        await harness.complete(provider=provider)
    with pytest.raises(UpstreamStatusError) as streamed:
        await harness.stream(provider=provider)
    for error in (plain.value, streamed.value):
        assert error.misconfigured and error.upstream_status == 401
        assert_no_key(error, wrong_key)
        assert_no_key(error, harness.case.api_key)


async def test_rate_limit_carries_retry_after(harness: Harness) -> None:
    harness.fake.fail_next(
        Fault.status(429, headers={"Retry-After": "2"}), Fault.status(429, headers={"Retry-After": "2"})
    )
    with pytest.raises(UpstreamStatusError) as plain:
        await harness.complete()
    with pytest.raises(UpstreamStatusError) as streamed:
        await harness.stream()
    for error in (plain.value, streamed.value):
        assert error.retryable and error.upstream_status == 429
        assert error.retry_after == 2.0


async def test_connection_refused(harness: Harness) -> None:
    await harness.fake.stop()
    with pytest.raises(UpstreamConnectionError) as plain:
        await harness.complete()
    with pytest.raises(UpstreamConnectionError):
        await harness.stream()
    with pytest.raises(UpstreamConnectionError):
        await harness.provider.list_models()
    with pytest.raises(UpstreamConnectionError):
        await harness.provider.check_health()
    assert plain.value.retryable
    assert_no_key(plain.value, harness.case.api_key)


async def test_connection_dropped_without_reply(harness: Harness) -> None:
    harness.fake.fail_next(Fault.drop(), Fault.drop())
    with pytest.raises(UpstreamConnectionError):
        await harness.complete()
    with pytest.raises(UpstreamConnectionError):
        await harness.stream()


async def test_hang_past_first_token_timeout_times_out_and_hangs_up(harness: Harness) -> None:
    # The hang ends (and the fake answers) well inside the total timeout: only the first-token timeout can fail it.
    quick = harness.adapter(timeouts=Timeouts(connect=1, first_token=0.5, idle=0.5, total=60))
    harness.fake.fail_next(Fault.hang(4))
    with pytest.raises(UpstreamTimeoutError) as streamed:
        await harness.stream(provider=quick)
    await eventually(lambda: harness.fake.disconnects == 1)
    assert streamed.value.retryable


async def test_whole_answers_are_bounded_by_the_total_timeout_not_the_first_token_one(harness: Harness) -> None:
    # A non-streamed answer arrives in one piece at the end: a long completion must not hit the first-token limit.
    patient = harness.adapter(timeouts=Timeouts(connect=1, first_token=0.2, idle=0.2, total=60))
    harness.fake.fail_next(Fault.hang(0.6))
    answer = await harness.complete(provider=patient)
    assert answer.body["choices"]
    short = harness.adapter(timeouts=Timeouts(connect=1, first_token=60, idle=60, total=0.5))
    harness.fake.fail_next(Fault.hang(4))
    with pytest.raises(UpstreamTimeoutError) as plain:
        await harness.complete(provider=short)
    await eventually(lambda: harness.fake.disconnects == 1)
    assert plain.value.retryable


async def test_idle_gap_mid_stream_times_out(harness: Harness) -> None:
    quick = harness.adapter(timeouts=Timeouts(connect=1, first_token=1, idle=0.3, total=5))
    harness.fake.reply = "a b c"
    harness.fake.stream_chunk_delay = 3
    received: list[StreamChunk] = []
    with pytest.raises(UpstreamTimeoutError):
        async for chunk in quick.stream(harness.body(), harness.case.model, False):
            received.append(chunk)
    await eventually(lambda: harness.fake.disconnects == 1)


async def test_drop_mid_stream_never_ends_cleanly(harness: Harness) -> None:
    harness.fake.reply = "a b c d e f"
    harness.fake.fail_next(Fault.drop_mid_stream(after_chunks=2))
    received: list[StreamChunk] = []
    with pytest.raises(UpstreamError) as dropped:
        async for chunk in harness.provider.stream(harness.body(), harness.case.model, True):
            received.append(chunk)
    assert "".join(chunk.text for chunk in received) == "a b"
    assert not any(chunk.finish_reason for chunk in received)
    assert dropped.value.retryable
    assert_no_key(dropped.value, harness.case.api_key)


async def test_error_event_mid_stream_raises(harness: Harness) -> None:
    harness.fake.reply = "a b c d"
    harness.fake.fail_next(Fault.error_event(after_chunks=1))
    received: list[StreamChunk] = []
    with pytest.raises(UpstreamError) as failed:
        async for chunk in harness.provider.stream(harness.body(), harness.case.model, False):
            received.append(chunk)
    assert "".join(chunk.text for chunk in received) == "a"
    assert_no_key(failed.value, harness.case.api_key)


async def test_closing_the_stream_early_hangs_up_upstream(harness: Harness) -> None:
    harness.fake.reply = " ".join(f"w{i}" for i in range(100))
    harness.fake.stream_chunk_delay = 0.02
    chunks = harness.provider.stream(harness.body(), harness.case.model, False)
    assert isinstance(chunks, AsyncIterator)
    async for chunk in chunks:
        if chunk.has_content:
            break
    await chunks.aclose()  # type: ignore[attr-defined]
    await eventually(lambda: harness.fake.disconnects == 1)
    assert harness.fake.in_flight == 0


# --- token-free calls ---------------------------------------------------------------------------------------------
async def test_list_models_and_health(harness: Harness) -> None:
    models = await harness.provider.list_models()
    assert harness.case.model in {name.removesuffix(":latest") for name in models}
    await harness.provider.check_health()
    harness.fake.probe_fault = Fault.status(503)
    with pytest.raises(UpstreamError) as unhealthy:
        await harness.provider.check_health()
    assert_no_key(unhealthy.value, harness.case.api_key)
    assert harness.fake.chat_calls == 0
