"""pytest fixtures for the fakes: one started fake per test, and a factory for tests that need several."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest_asyncio

from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import FakeProvider
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

OPENAI_TEST_KEY = "sk-test"
ANTHROPIC_TEST_KEY = "sk-ant-test"

F = TypeVar("F", bound=FakeProvider)
StartFake = Callable[..., Awaitable[Any]]


@pytest_asyncio.fixture
async def openai_fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake(api_key=OPENAI_TEST_KEY) as fake:
        yield fake


@pytest_asyncio.fixture
async def anthropic_fake() -> AsyncIterator[AnthropicFake]:
    async with AnthropicFake(api_key=ANTHROPIC_TEST_KEY) as fake:
        yield fake


@pytest_asyncio.fixture
async def ollama_fake() -> AsyncIterator[OllamaFake]:
    async with OllamaFake() as fake:
        yield fake


@pytest_asyncio.fixture
async def start_fake() -> AsyncIterator[StartFake]:
    """``fake = await start_fake(OpenAIFake, name="east", api_key="k1")``; every fake is stopped after the test."""
    started: list[FakeProvider] = []

    async def start(cls: type[F], **kwargs: Any) -> F:
        fake = cls(**kwargs)
        await fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()
