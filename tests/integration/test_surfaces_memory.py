"""Conversation memory (``session_id``) and knowledge bases (``rag_collection``) on the Responses and Messages
APIs, with the real parts (the packaged model, ChromaDB): on a passed-through Anthropic request they are text
blocks after the client's ``system``; on translated requests system messages, as on chat."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import (
    MODELS,
    PROVIDERS,
    anthropic_client,
    openai_client,
    reset,
    sent,
    surface_gateway,
    system_text,
)
from tests.integration.upstreams import Upstreams

pytestmark = pytest.mark.slow
MEMORY_TAG = "<conversation_memory>"
SOURCES_TAG = "<reference_sources>"
NAME = re.compile(r"[Mm]y name is (\w+)")
ADMIN = "surfaces-admin-token-1"


def name_aware(body: dict[str, Any]) -> str:
    """Answers from anything the request carries (system included, in any provider's shape)."""
    everything = str(body)
    found = NAME.findall(everything)
    if "What is my name" in everything:
        return f"Your name is {found[-1]}." if found else "I do not know your name."
    return "Noted."


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstreams, RunningGateway]]:
    env = {"ENABLE_MEMORY": "true", "ENABLE_RAG": "true", "AILB_ADMIN_TOKEN": ADMIN}
    with surface_gateway(tmp_path_factory.mktemp("memory"), **env) as (upstreams, gateway):
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=gateway.v1 + "/rag", headers=headers, timeout=120) as admin:
            assert admin.post("/collections", json={"name": "handbook"}).status_code == 201
            document = {"id": "leave", "text": "Employees get 30 days of paid leave per year, taken in agreement."}
            assert admin.post("/collections/handbook/documents", json={"documents": [document]}).status_code == 200
        yield upstreams, gateway


@pytest.fixture
def upstreams(running: tuple[Upstreams, RunningGateway]) -> Upstreams:
    reset(running[0])
    for provider in PROVIDERS:
        running[0][provider].fake.responder = name_aware
    return running[0]


@pytest.fixture
def gateway(running: tuple[Upstreams, RunningGateway]) -> RunningGateway:
    return running[1]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_remember_a_session(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    client = openai_client(gateway)
    session = {"session_id": f"responses-{provider}"}
    client.responses.create(model=MODELS[provider], input="My name is Alice", extra_body=session)
    gateway.flush_memory()
    raw = client.responses.with_raw_response.create(
        model=MODELS[provider], input="What is my name?", extra_body=session
    )
    assert raw.parse().output_text == "Your name is Alice." and raw.headers["x-ailb-memory-turns"] == "1"
    assert MEMORY_TAG in system_text(provider, sent(upstreams, provider)[-1])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
def test_messages_remember_a_session(
    gateway: RunningGateway, upstreams: Upstreams, provider: str, streamed: bool
) -> None:
    client = anthropic_client(gateway)
    session = f"messages-{provider}-{streamed}"
    system: Any = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]

    def ask(text: str) -> str:
        messages: Any = [{"role": "user", "content": text}]
        if streamed:
            with client.messages.stream(
                model=MODELS[provider], max_tokens=32, system=system, messages=messages,
                extra_headers={"X-Session-ID": session},
            ) as stream:  # fmt: skip
                return "".join(stream.text_stream)
        answer = client.messages.create(
            model=MODELS[provider], max_tokens=32, system=system, messages=messages, extra_body={"session_id": session}
        )
        return answer.content[0].text  # type: ignore[union-attr]

    assert ask("My name is Bruno") == "Noted."
    gateway.flush_memory()
    assert ask("What is my name?") == "Your name is Bruno."
    body = sent(upstreams, provider)[-1]
    if provider == "anthropic":  # the client's block first, untouched; the memory after it
        assert body["system"][0] == system[0] and MEMORY_TAG in body["system"][1]["text"]
    else:
        assert MEMORY_TAG in system_text(provider, body)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_knowledge_bases_on_both_surfaces(gateway: RunningGateway, upstreams: Upstreams, provider: str) -> None:
    question = "How many days of paid leave do employees get?"
    raw = openai_client(gateway).responses.with_raw_response.create(
        model=MODELS[provider], input=question, extra_body={"rag_collection": "handbook"}
    )
    assert raw.headers["x-ailb-rag-sources"] == "leave"
    assert SOURCES_TAG in system_text(provider, sent(upstreams, provider)[-1])
    answer = anthropic_client(gateway).messages.with_raw_response.create(
        model=MODELS[provider], max_tokens=32, messages=[{"role": "user", "content": question}],
        extra_body={"rag_collection": "handbook"},
    )  # fmt: skip
    assert answer.headers["x-ailb-rag-sources"] == "leave"
    assert "30 days of paid leave" in system_text(provider, sent(upstreams, provider)[-1])
