"""One gateway in front of the three wire-level fakes, for the API surface conformance suites.

Deployments (a config file): ``openai`` (chat ``gpt-4o-mini``; embeddings ``text-embedding-3-small`` and
``shared-embed``), ``anthropic`` (``claude-3-5-haiku-latest``), ``ollama`` (``llama3.2``; embeddings
``nomic-embed-text`` and ``shared-embed``), in that failover order; the alias ``chain`` names the three chat
models, so a failed deployment hands the request to the next provider. Circuits never open here (each test
scripts its own failures), and the packaged model serves ``all-MiniLM-L6-v2``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes import FakeProvider
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import ANTHROPIC_KEY, OPENAI_KEY, Upstreams, start_upstreams

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest", "ollama": "llama3.2"}
PROVIDERS = list(MODELS)
CHAIN = "chain"
EMBEDDING_MODELS = {"openai": "text-embedding-3-small", "ollama": "nomic-embed-text"}
SHARED_EMBEDDING = "shared-embed"
LOCAL_MODEL = "all-MiniLM-L6-v2"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PARIS = '{"city": "Paris"}'


def config_yaml(upstreams: Upstreams, extra: str = "") -> str:
    return (
        extra
        + f"""
deployments:
  - name: openai
    provider: openai
    base_url: {upstreams.openai.base_url}
    api_key: {OPENAI_KEY}
    models: [gpt-4o-mini]
    embedding_models: [text-embedding-3-small, {SHARED_EMBEDDING}]
    priority: 0
  - name: anthropic
    provider: anthropic
    base_url: {upstreams.anthropic.base_url}
    api_key: {ANTHROPIC_KEY}
    models: [claude-3-5-haiku-latest]
    priority: 1
  - name: ollama
    provider: ollama
    base_url: {upstreams.ollama.base_url}
    models: [llama3.2]
    embedding_models: [nomic-embed-text, {SHARED_EMBEDDING}]
    priority: 2
model_aliases:
  {CHAIN}: [gpt-4o-mini, claude-3-5-haiku-latest, llama3.2]
"""
    )


BASE_ENV = {
    "ROUTING_STRATEGY": "failover",
    "HEALTH_CHECK_INTERVAL": "0",
    "CIRCUIT_FAILURE_THRESHOLD": "1000",
    "ROUTER_MAX_ATTEMPTS": "3",
}


@contextmanager
def surface_gateway(workdir: Path, extra_yaml: str = "", **env: str) -> Iterator[tuple[Upstreams, RunningGateway]]:
    """The fakes and one gateway in front of them (``env`` adds to or overrides ``BASE_ENV``; ``extra_yaml`` adds
    top-level keys such as ``client_keys`` to the config file)."""
    with start_upstreams(ollama_models=["llama3.2", "nomic-embed-text", SHARED_EMBEDDING]) as upstreams:
        config = config_yaml(upstreams, extra_yaml)
        with RunningGateway({**BASE_ENV, **env}, config, workdir) as gateway:
            yield upstreams, gateway


def surface_fixtures(folder: str, extra_yaml: str = "", **env: str) -> tuple[Any, Any, Any]:
    """The fixtures a surface suite binds at module level, ``running, upstreams, gateway = surface_fixtures(...)``:
    ``running``, the fakes and one gateway in front of them for the whole module (``surface_gateway`` with these
    arguments, its workdir a temp folder named ``folder``); ``upstreams``, those fakes reset before each test;
    ``gateway``, that gateway."""

    @pytest.fixture(scope="module")
    def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstreams, RunningGateway]]:
        with surface_gateway(tmp_path_factory.mktemp(folder), extra_yaml, **env) as pair:
            yield pair

    @pytest.fixture
    def upstreams(running: tuple[Upstreams, RunningGateway]) -> Upstreams:
        reset(running[0])
        return running[0]

    @pytest.fixture
    def gateway(running: tuple[Upstreams, RunningGateway]) -> RunningGateway:
        return running[1]

    return running, upstreams, gateway


def reset(upstreams: Upstreams) -> None:
    upstreams.reset()
    for fake in all_fakes(upstreams):
        fake.requests.clear()
        fake.probe_fault = None


def all_fakes(upstreams: Upstreams) -> tuple[FakeProvider, ...]:
    return upstreams.openai, upstreams.anthropic, upstreams.ollama


def sent(upstreams: Upstreams, provider: str) -> list[Any]:
    """The bodies of the chat (or messages) requests ``provider``'s fake received."""
    return [request.json for request in upstreams[provider].fake.chat_requests]


def embeddings_sent(upstreams: Upstreams, provider: str) -> list[Any]:
    path = "/v1/embeddings" if provider == "openai" else "/api/embed"
    return [request.json for request in upstreams[provider].fake.requests if request.path == path]


def openai_client(gateway: RunningGateway, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0)


def anthropic_client(gateway: RunningGateway, key: str = "unused") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def user_text(provider: str, body: dict[str, Any]) -> str:
    """The text of the last user turn as ``provider``'s fake received it."""
    message = [m for m in body["messages"] if m["role"] == "user"][-1]
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


def system_text(provider: str, body: dict[str, Any]) -> str:
    """The system prompt as ``provider``'s fake received it."""
    if provider == "anthropic":
        system = body.get("system") or ""
        return system if isinstance(system, str) else "".join(block["text"] for block in system)
    return "".join(m["content"] for m in body["messages"] if m["role"] == "system")
