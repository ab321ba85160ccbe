"""The three wire-level fakes, each on its own thread, configured as the env-only setup would name them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from tests.fakes import AnthropicFake, FakeProvider, Fault, OllamaFake, OpenAIFake, Reply, ThreadedServer

OPENAI_KEY = "sk-openai-integration-key"
ANTHROPIC_KEY = "sk-ant-integration-key"
# One chat model of each provider in the env-only setup (``Upstreams.env``)
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest", "ollama": "llama3.2"}


class Upstream:
    """Thread-safe scripting of one fake from the test thread."""

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake

    def set_reply(self, text: str) -> None:
        self.fake.responder = None
        self.fake.reply = text

    def set_tool_call(self, name: str, arguments: str) -> None:
        self.fake.responder = None
        self.fake.reply = Reply(tool_calls=[(name, arguments)])

    def fail_next_status(self, status: int, message: str) -> None:
        self.fake.fail_next(Fault.status(status, body=self.fake.error_body(status, message)))

    def drop_next_stream_after(self, chunks: int) -> None:
        self.fake.fail_next(Fault.drop_mid_stream(after_chunks=chunks))

    def set_chunk_delay(self, seconds: float) -> None:
        self.fake.stream_chunk_delay = seconds

    def disconnects(self) -> int:
        return self.fake.disconnects

    def last_request_json(self) -> Any:
        return self.fake.chat_requests[-1].json

    def reset(self) -> None:
        self.fake.clear_faults()
        self.fake.responder = None
        self.fake.reply = f"Hello from {self.fake.name}"
        self.fake.latency = 0.0
        self.fake.stream_chunk_delay = 0.0
        self.fake.chat_calls = 0


class Upstreams:
    def __init__(self, openai: OpenAIFake, anthropic: AnthropicFake, ollama: OllamaFake) -> None:
        self._by_kind = {"openai": Upstream(openai), "anthropic": Upstream(anthropic), "ollama": Upstream(ollama)}
        self.openai, self.anthropic, self.ollama = openai, anthropic, ollama

    def __getitem__(self, kind: str) -> Upstream:
        return self._by_kind[kind]

    def env(self) -> dict[str, str]:
        return {
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": self.openai.base_url,
            "OPENAI_MODELS": "gpt-4o,gpt-4o-mini",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": self.anthropic.base_url,
            "ANTHROPIC_MODELS": "claude-3-5-haiku-latest,claude-3-5-sonnet-latest",
            "OLLAMA_BASE_URL": self.ollama.base_url,
        }

    def reset(self) -> None:
        for upstream in self._by_kind.values():
            upstream.reset()

    def total_chat_calls(self) -> int:
        return sum(u.fake.chat_calls for u in self._by_kind.values())


@contextmanager
def start_upstreams(ollama_models: Sequence[str] | None = None) -> Iterator[Upstreams]:
    """The three fakes, each on its own thread (Ollama's with ``ollama_models``, else its default list)."""
    fakes = (OpenAIFake(api_key=OPENAI_KEY), AnthropicFake(api_key=ANTHROPIC_KEY), OllamaFake(models=ollama_models))
    with ExitStack() as stack:
        for fake in fakes:
            stack.enter_context(ThreadedServer(fake))
        yield Upstreams(*fakes)
