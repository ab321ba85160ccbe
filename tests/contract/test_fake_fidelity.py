"""The official SDKs parse every fake's answers, streams and errors: this keeps the fakes honest to the wire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.fakes import AnthropicFake, Fault, OllamaFake, OpenAIFake, Reply, ThreadedServer, fake_embedding
from tests.fakes.base import FakeProvider
from tests.polling import eventually

OPENAI_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ANTHROPIC_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WEATHER_CALL = ("get_weather", '{"city": "Paris", "unit": "celsius"}')
USER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
SONNET = "claude-3-5-sonnet-latest"
T = TypeVar("T")


_open_clients: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _open_clients:
        client = _open_clients.pop()
        await (client.close() if hasattr(client, "close") else client._client.aclose())


def _track(client: T) -> T:
    _open_clients.append(client)
    return client


# --- OpenAI ---------------------------------------------------------------------------------------------------
def _openai(fake: OpenAIFake, **kwargs: Any) -> openai.AsyncOpenAI:
    return _track(openai.AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key or "x", max_retries=0, **kwargs))


async def test_openai_plain_completion(openai_fake: OpenAIFake) -> None:
    openai_fake.reply = Reply("Sunny and mild.", prompt_tokens=11, completion_tokens=4)
    completion = await _openai(openai_fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Sunny and mild."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        11,
        4,
        15,
    )
    sent = openai_fake.chat_requests[0]
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.json["messages"] == USER


async def test_openai_stream_with_and_without_usage(openai_fake: OpenAIFake) -> None:
    client = _openai(openai_fake)
    openai_fake.reply = "one two three"
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert all(chunk.usage is None for chunk in chunks[:-1])

    plain = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    plain_chunks = [chunk async for chunk in plain]
    assert plain_chunks and all(chunk.usage is None and chunk.choices for chunk in plain_chunks)


async def test_openai_tool_call_whole_and_streamed(openai_fake: OpenAIFake) -> None:
    client = _openai(openai_fake)
    openai_fake.reply = Reply(tool_calls=[WEATHER_CALL])
    completion = await client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        tools=[OPENAI_TOOL],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", json.loads(WEATHER_CALL[1]))

    async with client.chat.completions.stream(
        model="gpt-4o",
        messages=USER,
        tools=[OPENAI_TOOL],
    ) as stream:
        final = await stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert streamed is not None and final.choices[0].finish_reason == "tool_calls"
    assert streamed[0].function.arguments == WEATHER_CALL[1]
    assert streamed[0].function.name == "get_weather"


async def test_openai_tool_call_needs_offered_tools(openai_fake: OpenAIFake) -> None:
    openai_fake.reply = Reply("No tools here.", tool_calls=[WEATHER_CALL])
    completion = await _openai(openai_fake).chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content == "No tools here."


async def test_openai_length_finish_from_max_tokens(openai_fake: OpenAIFake) -> None:
    openai_fake.reply = "a b c d e f"
    completion = await _openai(openai_fake).chat.completions.create(
        model="gpt-4o",
        messages=USER,
        max_completion_tokens=2,
    )
    assert completion.choices[0].message.content == "a b"
    assert completion.choices[0].finish_reason == "length"


async def test_openai_errors(openai_fake: OpenAIFake) -> None:
    with pytest.raises(openai.AuthenticationError) as bad_key:
        await _track(openai.AsyncOpenAI(base_url=openai_fake.base_url, api_key="sk-wrong", max_retries=0)).models.list()
    assert bad_key.value.code == "invalid_api_key"
    client = _openai(openai_fake)
    openai_fake.fail_next(Fault.status(429, headers={"Retry-After": "2"}), Fault.status(500), Fault.status(503))
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="gpt-5-nope", messages=USER)
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        await client.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            stream_options={"include_usage": True},
        )
    orphan_tool = [*USER, {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]
    with pytest.raises(openai.BadRequestError, match="tool_calls"):
        await client.chat.completions.create(model="gpt-4o", messages=orphan_tool)
    assert openai_fake.chat_calls == 6


async def test_openai_stream_faults(openai_fake: OpenAIFake) -> None:
    client = _openai(openai_fake)
    openai_fake.reply = "a b c d e"
    openai_fake.fail_next(Fault.drop_mid_stream(after_chunks=2), Fault.error_event(after_chunks=1))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "a b"
    received.clear()
    with pytest.raises(openai.APIError, match="server had an error"):
        async for chunk in await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "a"


async def test_openai_drop_hang_and_disconnect(openai_fake: OpenAIFake) -> None:
    openai_fake.fail_next(Fault.drop(), Fault.hang(30))
    with pytest.raises(openai.APIConnectionError):
        await _openai(openai_fake).chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.APITimeoutError):
        await _openai(openai_fake, timeout=0.3).chat.completions.create(model="gpt-4o", messages=USER)
    await eventually(lambda: openai_fake.disconnects == 1 and openai_fake.in_flight == 0)

    openai_fake.reply = " ".join(f"w{i}" for i in range(50))
    openai_fake.stream_chunk_delay = 0.02
    stream = await _openai(openai_fake).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    async for chunk in stream:
        if chunk.choices[0].delta.content:
            break
    await stream.close()
    await eventually(lambda: openai_fake.disconnects == 2)
    assert openai_fake.in_flight == 0


async def test_openai_fail_always_until_cleared(openai_fake: OpenAIFake) -> None:
    client = _openai(openai_fake)
    openai_fake.fail_always(Fault.status(502))
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="gpt-4o", messages=USER)
    openai_fake.clear_faults()
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.choices[0].message.content == "Hello from openai"
    assert openai_fake.chat_calls == 4


async def test_openai_models_and_embeddings(openai_fake: OpenAIFake) -> None:
    client = _openai(openai_fake)
    assert [model.id async for model in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
    assert (await client.models.retrieve("gpt-4o")).owned_by == "system"
    packed = await client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert [item.embedding for item in packed.data] == [fake_embedding("alpha", 16), fake_embedding("beta", 16)]
    assert openai_fake.requests[-1].json["encoding_format"] == "base64"
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input="alpha", encoding_format="float", dimensions=8
    )
    assert floats.data[0].embedding == fake_embedding("alpha", 8)
    assert floats.usage.prompt_tokens == 1


def test_openai_sync_client_through_threaded_server() -> None:
    with ThreadedServer(OpenAIFake(api_key="sk-thread", name="threaded")) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-thread", max_retries=0)
        server.server.fail_next(Fault.status(500))
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o", messages=USER)
        completion = client.chat.completions.create(model="gpt-4o", messages=USER)
        assert completion.choices[0].message.content == "Hello from threaded"
        assert server.call(lambda: server.server.chat_calls) == 2
        server.call(lambda: setattr(server.server, "reply", "changed on the loop"))
        completion = client.chat.completions.create(model="gpt-4o", messages=USER)
        assert completion.choices[0].message.content == "changed on the loop"


# --- Anthropic ------------------------------------------------------------------------------------------------
def _anthropic(fake: AnthropicFake, **kwargs: Any) -> anthropic.AsyncAnthropic:
    return _track(anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=fake.api_key, max_retries=0, **kwargs))


async def test_anthropic_plain_message(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = Reply("Sunny.", prompt_tokens=12, completion_tokens=2)
    message = await _anthropic(anthropic_fake).messages.create(
        model=SONNET,
        max_tokens=100,
        system="Be brief.",
        messages=USER,
    )
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.content[0].type == "text" and message.content[0].text == "Sunny."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 2)
    assert anthropic_fake.chat_requests[0].json["system"] == "Be brief."


async def test_anthropic_stream_event_sequence(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = "one two three"
    raw = await _anthropic(anthropic_fake).messages.create(
        model=SONNET,
        max_tokens=100,
        messages=USER,
        stream=True,
    )
    events = [event async for event in raw]
    kinds = [event.type for event in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    texts = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    assert "".join(texts) == "one two three"
    delta = events[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens == 3


async def test_anthropic_tool_use_whole_and_streamed(anthropic_fake: AnthropicFake) -> None:
    client = _anthropic(anthropic_fake)
    anthropic_fake.reply = Reply("Let me check.", tool_calls=[WEATHER_CALL])
    message = await client.messages.create(
        model=SONNET,
        max_tokens=100,
        messages=USER,
        tools=[ANTHROPIC_TOOL],
    )
    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert text.type == "text" and text.text == "Let me check."
    assert tool.type == "tool_use" and tool.id.startswith("toolu_")
    assert (tool.name, tool.input) == ("get_weather", json.loads(WEATHER_CALL[1]))

    anthropic_fake.reply = Reply(tool_calls=[WEATHER_CALL])
    async with client.messages.stream(
        model=SONNET,
        max_tokens=100,
        messages=USER,
        tools=[ANTHROPIC_TOOL],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [block.type for block in final.content] == ["tool_use"]
    assert final.content[0].type == "tool_use" and final.content[0].input == json.loads(WEATHER_CALL[1])


async def test_anthropic_tool_round_trip_is_accepted(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = "It is 18C."
    history: Any = [
        *USER,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
    ]
    message = await _anthropic(anthropic_fake).messages.create(
        model=SONNET,
        max_tokens=50,
        messages=history,
        tools=[ANTHROPIC_TOOL],
    )
    assert message.content[0].type == "text" and message.content[0].text == "It is 18C."


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"messages": [{"role": "system", "content": "x"}, *USER]}, 'Unexpected role "system"'),
        ({"messages": [{"role": "assistant", "content": "x"}, *USER]}, "first message"),
        ({"messages": [*USER, *USER]}, "roles must alternate"),
        ({"presence_penalty": 0.5}, "presence_penalty: Extra inputs are not permitted"),
        ({"temperature": 1.5}, "temperature"),
        ({"tools": [OPENAI_TOOL]}, "tools.0"),
        ({"messages": [{"role": "user", "content": ""}]}, "non-empty content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}]},
            "tool_use_id",
        ),
        (
            {
                "messages": [
                    *USER,
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                    {"role": "user", "content": "next"},
                ]
            },
            "without `tool_result`",
        ),
    ],
)
async def test_anthropic_rejects_malformed_requests(
    anthropic_fake: AnthropicFake, change: dict[str, Any], fragment: str
) -> None:
    body = {"model": SONNET, "max_tokens": 100, "messages": USER, **change}
    body = {key: value for key, value in body.items() if value is not None}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            anthropic_fake.base_url + "/v1/messages",
            json=body,
            headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
        )
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert fragment in error["error"]["message"]


async def test_anthropic_headers_are_required(anthropic_fake: AnthropicFake) -> None:
    body = {"model": SONNET, "max_tokens": 10, "messages": USER}
    async with httpx.AsyncClient(base_url=anthropic_fake.base_url) as http:
        no_version = await http.post("/v1/messages", json=body, headers={"x-api-key": "sk-ant-test"})
        no_key = await http.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
        x_api_key = await http.post(
            "/v1/messages", json=body, headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
        )
    assert no_version.status_code == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    assert x_api_key.status_code == 200 and x_api_key.json()["content"][0]["text"] == "Hello from anthropic"
    with pytest.raises(anthropic.AuthenticationError):
        await _track(
            anthropic.AsyncAnthropic(base_url=anthropic_fake.base_url, api_key="bad", max_retries=0)
        ).models.list()


async def test_anthropic_status_faults(anthropic_fake: AnthropicFake) -> None:
    client = _anthropic(anthropic_fake)
    anthropic_fake.fail_next(
        Fault.status(529), Fault.status(429, headers={"retry-after": "3"}), Fault.status(500), Fault.status(418)
    )
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await client.messages.create(model=SONNET, max_tokens=10, messages=USER)
    assert isinstance(overloaded.value.body, dict) and overloaded.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(model=SONNET, max_tokens=10, messages=USER)
    assert limited.value.response.headers["retry-after"] == "3"
    with pytest.raises(anthropic.InternalServerError):
        await client.messages.create(model=SONNET, max_tokens=10, messages=USER)
    with pytest.raises(anthropic.APIStatusError) as teapot:
        await client.messages.create(model=SONNET, max_tokens=10, messages=USER)
    assert teapot.value.status_code == 418


async def test_anthropic_stream_faults(anthropic_fake: AnthropicFake) -> None:
    client = _anthropic(anthropic_fake)
    anthropic_fake.reply = "a b c d"
    anthropic_fake.fail_next(Fault.error_event(after_chunks=1), Fault.drop_mid_stream(after_chunks=2))
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        async with client.messages.stream(model=SONNET, max_tokens=10, messages=USER) as stream:
            async for text in stream.text_stream:
                received.append(text)
    assert received == ["a"]
    received.clear()
    with pytest.raises(Exception, match="incomplete chunked read"):  # the SDK lets the transport error through
        async with client.messages.stream(model=SONNET, max_tokens=10, messages=USER) as stream:
            async for text in stream.text_stream:
                received.append(text)
    assert received == ["a", " b"]


async def test_anthropic_models(anthropic_fake: AnthropicFake) -> None:
    page = await _anthropic(anthropic_fake).models.list()
    assert [model.id for model in page.data] == [SONNET, "claude-3-5-haiku-latest"]
    count = await _anthropic(anthropic_fake).messages.count_tokens(model=SONNET, messages=USER)
    assert count.input_tokens == 6


# --- Ollama ---------------------------------------------------------------------------------------------------
async def test_ollama_chat_plain_and_streamed(ollama_fake: OllamaFake) -> None:
    client = _track(ollama.AsyncClient(host=ollama_fake.url))
    ollama_fake.reply = Reply("one two three", prompt_tokens=9)
    response = await client.chat(model="llama3.2", messages=USER)
    assert response.message.content == "one two three"
    assert response.done and response.done_reason == "stop"
    assert (response.prompt_eval_count, response.eval_count) == (9, 3)
    parts = [part async for part in await client.chat(model="llama3.2", messages=USER, stream=True)]
    assert "".join(part.message.content or "" for part in parts) == "one two three"
    assert [part.done for part in parts] == [False, False, False, True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 3
    assert ollama_fake.chat_requests[-1].json["stream"] is True


async def test_ollama_stream_is_the_default(ollama_fake: OllamaFake) -> None:
    async with httpx.AsyncClient() as http:
        body = {"model": "llama3.2", "messages": USER}
        response = await http.post(ollama_fake.url + "/api/chat", json=body)
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert lines[-1]["done"] is True and all(line["done"] is False for line in lines[:-1])


async def test_ollama_tool_calls(ollama_fake: OllamaFake) -> None:
    client = _track(ollama.AsyncClient(host=ollama_fake.url))
    ollama_fake.reply = Reply(tool_calls=[WEATHER_CALL])
    response = await client.chat(model="llama3.2", messages=USER, tools=[OPENAI_TOOL])
    assert response.message.tool_calls is not None
    call = response.message.tool_calls[0].function
    assert (call.name, dict(call.arguments)) == ("get_weather", json.loads(WEATHER_CALL[1]))
    parts = [
        part async for part in await client.chat(model="llama3.2", messages=USER, tools=[OPENAI_TOOL], stream=True)
    ]
    calls = [c for part in parts for c in (part.message.tool_calls or [])]
    assert [c.function.name for c in calls] == ["get_weather"]


async def test_ollama_errors(ollama_fake: OllamaFake) -> None:
    client = _track(ollama.AsyncClient(host=ollama_fake.url))
    with pytest.raises(ollama.ResponseError) as missing:
        await client.chat(model="mistral", messages=USER)
    assert missing.value.status_code == 404 and "not found" in missing.value.error
    ollama_fake.fail_next(Fault.status(500), Fault.error_event(after_chunks=1))
    with pytest.raises(ollama.ResponseError) as failed:
        await client.chat(model="llama3.2", messages=USER)
    assert failed.value.status_code == 500
    with pytest.raises(ollama.ResponseError, match="unexpected EOF"):
        async for _part in await client.chat(model="llama3.2", messages=USER, stream=True):
            pass
    async with httpx.AsyncClient() as http:
        listed = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": [{"type": "text"}]}]}
        response = await http.post(ollama_fake.url + "/api/chat", json=listed)
    assert response.status_code == 400 and "cannot unmarshal array" in response.json()["error"]


async def test_ollama_tags_embed_and_auth(start_fake: Any) -> None:
    fake: OllamaFake = await start_fake(OllamaFake, api_key="proxy-key", models=["llama3.2", "qwen3:8b"])
    client = _track(ollama.AsyncClient(host=fake.url, headers={"Authorization": "Bearer proxy-key"}))
    listed = await client.list()
    assert [model.model for model in listed.models] == ["llama3.2:latest", "qwen3:8b"]
    embedded = await client.embed(model="llama3.2", input=["alpha", "beta"])
    assert embedded.embeddings == [fake_embedding("alpha", 16), fake_embedding("beta", 16)]
    with pytest.raises(ollama.ResponseError) as denied:
        await _track(ollama.AsyncClient(host=fake.url)).chat(model="llama3.2", messages=USER)
    assert denied.value.status_code == 401


# --- shared machinery ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fake_class", [OpenAIFake, AnthropicFake, OllamaFake])
async def test_probe_fault_and_restart_on_the_same_port(start_fake: Any, fake_class: type[FakeProvider]) -> None:
    fake: FakeProvider = await start_fake(fake_class, api_key="k")
    listing = {"openai": "/v1/models", "anthropic": "/v1/models", "ollama": "/api/tags"}[fake.kind]
    headers = {"Authorization": "Bearer k", "x-api-key": "k", "anthropic-version": "2023-06-01"}
    url = fake.url
    async with httpx.AsyncClient(headers=headers) as http:
        assert (await http.get(url + listing)).status_code == 200
        fake.probe_fault = Fault.status(503)
        assert (await http.get(url + listing)).status_code == 503
        fake.probe_fault = None
        await fake.stop()
        with pytest.raises(httpx.ConnectError):
            await http.get(url + listing)
        await fake.start()
        assert fake.url == url
        assert (await http.get(url + listing)).status_code == 200


async def test_responder_sees_each_request(openai_fake: OpenAIFake) -> None:
    def echo(body: Any) -> Reply:
        return Reply(f"you said: {body['messages'][-1]['content']}")

    openai_fake.responder = echo
    completion = await _openai(openai_fake).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "ping"}],
    )
    assert completion.choices[0].message.content == "you said: ping"
