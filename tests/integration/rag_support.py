"""Shared set-up for the RAG integration tests: an OpenAI fake upstream and gateways with RAG enabled."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.threaded import ThreadedServer
from tests.integration.harness import RunningGateway

CORPUS = Path(__file__).parents[2] / "examples" / "company-policies"
MODEL = "gpt-4o-mini"
UPSTREAM_KEY = "sk-rag-upstream-0001"
ADMIN_TOKEN = "rag-admin-token-42"


@contextmanager
def openai_upstream() -> Iterator[ThreadedServer[OpenAIFake]]:
    with ThreadedServer(OpenAIFake(api_key=UPSTREAM_KEY, models=[MODEL])) as server:
        yield server


def rag_env(upstream: ThreadedServer[OpenAIFake], rag_path: Path, **extra: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": UPSTREAM_KEY,
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_MODELS": MODEL,
        "ENABLE_RAG": "true",
        "ENABLE_MEMORY": "false",
        "RAG_PATH": str(rag_path),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **extra,
    }


def admin_client(gateway: RunningGateway, token: str | None = ADMIN_TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=gateway.url + "/v1/rag", headers=headers, timeout=60)


def last_upstream_messages(upstream: ThreadedServer[OpenAIFake]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = upstream.server.chat_requests[-1].json["messages"]
    return messages


def reference_block(messages: list[dict[str, Any]]) -> str:
    """The one injected reference block (asserting there is exactly one)."""
    blocks = [m["content"] for m in messages if m["role"] == "system" and "<reference_sources>" in m["content"]]
    assert len(blocks) == 1, messages
    content: str = blocks[0]
    return content[content.index("<reference_sources>") : content.index("</reference_sources>")]
