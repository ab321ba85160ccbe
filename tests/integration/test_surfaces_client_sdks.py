"""Other client libraries users point at a gateway: LangChain's ``ChatOpenAI`` (chat completions and, with
``use_responses_api``, the Responses API) and ``OpenAIEmbeddings``, and LiteLLM as a client SDK
(``completion`` — also through its Anthropic provider, which speaks ``/v1/messages`` — ``responses``,
``text_completion`` and ``embedding``), against the real gateway and the wire-level fakes."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.fakes import Reply, fake_embedding
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import (
    EMBEDDING_MODELS,
    MODELS,
    PARIS,
    PROVIDERS,
    WEATHER_SCHEMA,
    sent,
    surface_fixtures,
)
from tests.integration.upstreams import Upstreams

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no model price download at import
langchain_openai = pytest.importorskip("langchain_openai")
litellm = pytest.importorskip("litellm")

KEY = "unused"


running, upstreams, gateway = surface_fixtures("sdks")


def chat_model(gateway: RunningGateway, provider: str, responses: bool) -> Any:
    return langchain_openai.ChatOpenAI(
        model=MODELS[provider], base_url=gateway.v1, api_key=KEY, use_responses_api=responses, max_retries=0
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("responses", [False, True])
def test_langchain_chat_openai(gateway: RunningGateway, upstreams: Upstreams, provider: str, responses: bool) -> None:
    upstreams[provider].fake.reply = "Bonjour"
    model = chat_model(gateway, provider, responses)
    assert model.invoke("Say hello").text == "Bonjour"
    assert "".join(chunk.text for chunk in model.stream("Say hello")) == "Bonjour"
    upstreams[provider].fake.reply = Reply(tool_calls=[("get_weather", PARIS)])
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
    }
    called = model.bind_tools([tool]).invoke("Weather in Paris?")
    assert [(call["name"], call["args"]) for call in called.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert len(sent(upstreams, provider)) == 3


def test_langchain_embeddings(gateway: RunningGateway, upstreams: Upstreams) -> None:
    embeddings = langchain_openai.OpenAIEmbeddings(
        model=EMBEDDING_MODELS["openai"], base_url=gateway.v1, api_key=KEY, check_embedding_ctx_length=False
    )
    assert embeddings.embed_documents(["red", "green"]) == [fake_embedding(t, 16) for t in ("red", "green")]
    assert embeddings.embed_query("blue") == fake_embedding("blue", 16)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_litellm_completion(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = "Hi from the gateway"
    answer = litellm.completion(
        model=f"openai/{MODELS[provider]}", messages=[{"role": "user", "content": "hi"}], api_base=gateway.v1,
        api_key=KEY,
    )  # fmt: skip
    assert answer.choices[0].message.content == "Hi from the gateway"
    chunks = litellm.completion(
        model=f"openai/{MODELS[provider]}", messages=[{"role": "user", "content": "hi"}], api_base=gateway.v1,
        api_key=KEY, stream=True,
    )  # fmt: skip
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Hi from the gateway"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_litellm_anthropic_provider_speaks_messages(
    gateway: RunningGateway, upstreams: Upstreams, provider: str
) -> None:
    upstreams[provider].fake.reply = "Hello through Messages"
    answer = litellm.completion(
        model=f"anthropic/{MODELS[provider]}", messages=[{"role": "user", "content": "hi"}], api_base=gateway.url,
        api_key=KEY, max_tokens=32,
    )  # fmt: skip
    assert answer.choices[0].message.content == "Hello through Messages"
    if provider == "anthropic":
        assert sent(upstreams, provider)[-1]["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]}
        ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_litellm_responses(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    upstreams[provider].fake.reply = "Answered by Responses"
    answer = litellm.responses(model=f"openai/{MODELS[provider]}", input="hi", api_base=gateway.v1, api_key=KEY)
    texts = [part.text for item in answer.output if item.type == "message" for part in item.content]
    assert texts == ["Answered by Responses"]


def test_litellm_text_completion_and_embedding(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams.ollama.reply = "legacy text"
    answer = litellm.text_completion(
        model=f"text-completion-openai/{MODELS['ollama']}", prompt="Once upon", api_base=gateway.v1, api_key=KEY
    )
    assert answer.choices[0].text == "legacy text"
    vectors = litellm.embedding(
        model=f"openai/{EMBEDDING_MODELS['ollama']}", input=["red"], api_base=gateway.v1, api_key=KEY
    )
    assert vectors.data[0]["embedding"] == fake_embedding("red", 16)
