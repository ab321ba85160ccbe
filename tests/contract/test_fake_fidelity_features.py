"""The official SDKs parse the fakes' newer features: Claude's thinking and prompt-cache counts, strict tools,
Ollama's thinking and logprobs, OpenAI's custom tools, cached tokens and reasoning_content (as DeepSeek and
vLLM send it). Keeps the fakes honest to the wire where the gateway's translations are tested against them."""

from __future__ import annotations

from typing import Any

import anthropic
import ollama
import openai
import pytest

from tests.fakes import AnthropicFake, OllamaFake, OpenAIFake, Reply
from tests.fakes.anthropic_fake import thinking_signature

USER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
SONNET = "claude-3-5-sonnet-latest"
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
ANTHROPIC_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _anthropic(fake: AnthropicFake) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=fake.api_key or "x", max_retries=0)


# --- Anthropic ----------------------------------------------------------------------------------------------------
async def test_anthropic_thinking_blocks_whole_and_streamed(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = Reply("Sunny.", reasoning="Paris in June is warm", redacted_reasoning="opaque-data")
    async with _anthropic(anthropic_fake) as client:
        message = await client.messages.create(model=SONNET, max_tokens=2048, thinking=THINKING, messages=USER)
        assert [block.type for block in message.content] == ["thinking", "redacted_thinking", "text"]
        thinking, redacted = message.content[0], message.content[1]
        assert thinking.type == "thinking" and thinking.thinking == "Paris in June is warm"
        assert thinking.signature == thinking_signature("Paris in June is warm")
        assert redacted.type == "redacted_thinking" and redacted.data == "opaque-data"
        async with client.messages.stream(model=SONNET, max_tokens=2048, thinking=THINKING, messages=USER) as stream:
            final = await stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "redacted_thinking", "text"]
    assert final.content[0].type == "thinking" and final.content[0].thinking == "Paris in June is warm"
    assert final.content[0].signature == thinking_signature("Paris in June is warm")
    assert final.content[2].type == "text" and final.content[2].text == "Sunny."


async def test_anthropic_sends_thinking_only_when_enabled(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = Reply("Sunny.", reasoning="hidden")
    async with _anthropic(anthropic_fake) as client:
        message = await client.messages.create(model=SONNET, max_tokens=100, messages=USER)
    assert [block.type for block in message.content] == ["text"]


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ({"max_tokens": 1024, "thinking": THINKING}, "greater than `thinking.budget_tokens`"),
        ({"thinking": {"type": "enabled", "budget_tokens": 500}}, "greater than or equal to 1024"),
        ({"thinking": THINKING, "extra_body": {"temperature": 0.5}}, "temperature"),
        ({"thinking": THINKING, "tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "any"}}, "forces tool use"),
        ({"tools": [{**ANTHROPIC_TOOL, "parameters": {}}]}, "tools.0.custom.parameters"),
    ],
)
async def test_anthropic_thinking_and_tool_rules(
    anthropic_fake: AnthropicFake, extra: dict[str, Any], complaint: str
) -> None:
    async with _anthropic(anthropic_fake) as client:
        with pytest.raises(anthropic.BadRequestError, match=complaint.replace("`", ".").replace("(", ".")):
            await client.messages.create(**{"model": SONNET, "max_tokens": 2048, "messages": USER, **extra})


async def test_anthropic_accepts_strict_tools_and_signed_thinking_in_history(anthropic_fake: AnthropicFake) -> None:
    history: Any = [
        *USER,
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "warm", "signature": thinking_signature("warm")},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Let me think."},
            ],
        },
        {"role": "user", "content": "And tomorrow?"},
    ]
    async with _anthropic(anthropic_fake) as client:
        message = await client.messages.create(
            model=SONNET,
            max_tokens=2048,
            thinking=THINKING,
            messages=history,
            tools=[{**ANTHROPIC_TOOL, "strict": True}],
        )
        unsigned = [history[0], {"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}, history[2]]
        with pytest.raises(anthropic.BadRequestError, match="signature"):
            await client.messages.create(model=SONNET, max_tokens=100, messages=unsigned)
    assert message.content[0].type == "text"
    assert anthropic_fake.chat_requests[0].json["tools"][0]["strict"] is True


async def test_anthropic_prompt_cache_counts(anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.reply = Reply("Sunny.", prompt_tokens=5, cache_read_tokens=700, cache_write_tokens=300)
    async with _anthropic(anthropic_fake) as client:
        message = await client.messages.create(model=SONNET, max_tokens=100, messages=USER)
        async with client.messages.stream(model=SONNET, max_tokens=100, messages=USER) as stream:
            final = await stream.get_final_message()
    for usage in (message.usage, final.usage):
        assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (5, 700, 300)


# --- Ollama -------------------------------------------------------------------------------------------------------
async def test_ollama_thinking_whole_and_streamed(ollama_fake: OllamaFake) -> None:
    client = ollama.AsyncClient(host=ollama_fake.url)
    ollama_fake.reply = Reply("Sunny.", reasoning="warm in June")
    response = await client.chat(model="llama3.2", messages=USER, think=True)
    assert (response.message.thinking, response.message.content) == ("warm in June", "Sunny.")
    parts = [part async for part in await client.chat(model="llama3.2", messages=USER, think="high", stream=True)]
    assert "".join(part.message.thinking or "" for part in parts) == "warm in June"
    assert "".join(part.message.content or "" for part in parts) == "Sunny."
    silent = await client.chat(model="llama3.2", messages=USER)
    assert silent.message.thinking is None


async def test_ollama_logprobs_whole_and_streamed(ollama_fake: OllamaFake) -> None:
    client = ollama.AsyncClient(host=ollama_fake.url)
    ollama_fake.reply = "Hi there"
    response = await client.chat(model="llama3.2", messages=USER, logprobs=True, top_logprobs=2)
    assert response.logprobs is not None
    assert [entry.token for entry in response.logprobs] == ["Hi", " there"]
    first = response.logprobs[0]
    assert first.logprob < 0 and first.top_logprobs is not None
    assert [alt.token for alt in first.top_logprobs] == ["Hi", "Hi~1"]
    parts = [part async for part in await client.chat(model="llama3.2", messages=USER, logprobs=True, stream=True)]
    tokens = [entry.token for part in parts for entry in part.logprobs or ()]
    assert tokens == ["Hi", " there"]
    assert all(entry.top_logprobs is None for part in parts for entry in part.logprobs or ())
    plain = await client.chat(model="llama3.2", messages=USER)
    assert plain.logprobs is None


# --- OpenAI -------------------------------------------------------------------------------------------------------
async def test_openai_custom_tools_reasoning_and_cached_tokens(openai_fake: OpenAIFake) -> None:
    tool: Any = {"type": "custom", "custom": {"name": "run_sql", "format": {"type": "text"}}}
    openai_fake.reply = Reply(tool_calls=[("run_sql", "SELECT 1")], reasoning="needs a query", cache_read_tokens=3)
    async with openai.AsyncOpenAI(base_url=openai_fake.base_url, api_key="sk-test", max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            tools=[tool],
            tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [tool]}},
        )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.type == "custom" and (call.custom.name, call.custom.input) == ("run_sql", "SELECT 1")
    assert completion.choices[0].message.model_extra == {"reasoning_content": "needs a query"}
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 3
