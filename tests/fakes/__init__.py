"""Loopback fakes of the upstream LLM APIs, with scripted replies and faults."""

from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import FakeProvider
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.script import Fault, RecordedRequest, Reply, fake_embedding
from tests.fakes.threaded import ThreadedServer

__all__ = [
    "AnthropicFake",
    "FakeProvider",
    "Fault",
    "OllamaFake",
    "OpenAIFake",
    "RecordedRequest",
    "Reply",
    "ThreadedServer",
    "fake_embedding",
]
