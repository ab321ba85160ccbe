"""Shared set-up for the key-leak tests: one fake of each provider kind, all holding one distinctive "canary" key,
served by a gateway whose config file names them, and a check that finds the canary in any casing or JSON escape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx

from tests.fakes import AnthropicFake, FakeProvider, OllamaFake, OpenAIFake, ThreadedServer

CANARY = "sk-CANARY-7f3a9c1e5b2d4f60a8e1"
KINDS = ("openai", "anthropic", "ollama")
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest", "ollama": "llama3.2"}
Fakes = dict[str, FakeProvider]


@contextmanager
def canary_fakes() -> Iterator[Fakes]:
    """The three fakes, each on its own thread, each requiring the canary key."""
    fakes: Fakes = {
        "openai": OpenAIFake(api_key=CANARY, models=[MODELS["openai"]]),
        "anthropic": AnthropicFake(api_key=CANARY, models=[MODELS["anthropic"]]),
        "ollama": OllamaFake(api_key=CANARY, models=[MODELS["ollama"]]),
    }
    with ExitStack() as stack:
        for fake in fakes.values():
            stack.enter_context(ThreadedServer(fake))
        yield fakes


def reset(fakes: Fakes) -> None:
    for fake in fakes.values():
        fake.clear_faults()
        fake.responder = None
        fake.reply = f"Hello from {fake.name}"
        fake.rewrite = None
        fake.stream_chunk_delay = 0.0
        fake.latency = 0.0
        fake.probe_fault = None


def config_yaml(fakes: Fakes) -> str:
    lines = ["deployments:"]
    for kind, fake in fakes.items():
        lines += [
            f"  - name: {kind}-canary",
            f"    provider: {kind}",
            f"    base_url: {fake.base_url}",
            f"    api_key: {CANARY}",
            f"    models: [{MODELS[kind]}]",
            "    timeouts: {connect: 2, first_token: 2, idle: 2, total: 10}",
        ]
    return "\n".join(lines) + "\n"


GATEWAY_ENV = {"HEALTH_CHECK_INTERVAL": "0", "CIRCUIT_FAILURE_THRESHOLD": "1000", "ROUTER_MAX_ATTEMPTS": "1"}


def leaks(text: str, secret: str = CANARY) -> bool:
    """Whether ``text`` shows ``secret``: as is, in another casing, or hidden behind JSON ``\\uXXXX`` escapes."""
    decoded = text.encode("ascii", "backslashreplace").decode("unicode_escape", "ignore")
    return secret.lower() in text.lower() or secret.lower() in decoded.lower()


def assert_clean(response: httpx.Response, text: str | None = None) -> None:
    body = response.text if text is None else text
    assert not leaks(body), body
    for name, value in response.headers.items():
        assert not leaks(f"{name}: {value}"), (name, value)


def chat(kind: str, stream: bool = False, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"model": MODELS[kind], "messages": [{"role": "user", "content": "hi"}], **extra}
    if stream:
        body["stream"] = True
    return body


def post_stream(http: httpx.Client, url: str, body: dict[str, object]) -> tuple[httpx.Response, str]:
    """POST a streaming chat request and read the whole answer as text (SSE or an error body)."""
    with http.stream("POST", url, json=body) as response:
        text = "".join(response.iter_text())
    return response, text
