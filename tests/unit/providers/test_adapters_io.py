"""The adapters over a real loopback socket: paths, headers, whole answers, streams, truncation, embeddings.

The server here only replays canned bytes and records requests; the wire-level fakes and the contract suite
check the protocols in depth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from ailb.errors import InvalidRequestError, UpstreamConnectionError, UpstreamError, UpstreamStatusError
from ailb.providers.anthropic.adapter import AnthropicProvider
from ailb.providers.ollama.adapter import OllamaProvider
from ailb.providers.openai.adapter import OpenAIProvider
from ailb.settings import DeploymentConfig, Timeouts

from .streams import ndjson_bytes, payloads, sse_bytes


@dataclass
class Canned:
    """Replies keyed by path: ``(status, content_type, body)``; every request is recorded."""

    replies: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.seen.append((request.method, request.path_qs, dict(request.headers), orjson.loads(raw) if raw else None))
        status, content_type, body = self.replies[request.path]
        return web.Response(status=status, body=body, content_type=content_type)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Canned, str]]:
    canned = Canned()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", canned.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield canned, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def config(kind: str, base_url: str, api_key: str = "sk-test") -> DeploymentConfig:
    timeouts = Timeouts(connect=2, first_token=5, idle=5, total=10)
    return DeploymentConfig(name=f"{kind}-1", provider=kind, base_url=base_url, api_key=api_key, timeouts=timeouts)


BODY = {"model": "public", "messages": [{"role": "user", "content": "Hi"}]}
JSON = "application/json"


# --- Anthropic -----------------------------------------------------------------------------------------------
ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": [], "stop_reason": None}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
]


async def test_anthropic_complete_sends_headers_and_maps_the_answer(server: tuple[Canned, str]) -> None:
    canned, url = server
    canned.replies["/v1/messages"] = (200, JSON, orjson.dumps(ANTHROPIC_MESSAGE))
    provider = AnthropicProvider(config("anthropic", url))
    try:
        done = await provider.complete(BODY, "claude-x")
    finally:
        await provider.aclose()
    method, path, headers, sent = canned.seen[0]
    assert (method, path) == ("POST", "/v1/messages")
    assert headers["x-api-key"] == "sk-test" and headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in headers
    assert sent["model"] == "claude-x" and sent["max_tokens"] == 4096 and "stream" not in sent
    assert done.text == "Hello" and done.body["choices"][0]["finish_reason"] == "stop"


async def test_anthropic_stream_and_base_url_ending_in_v1(server: tuple[Canned, str]) -> None:
    canned, url = server
    canned.replies["/v1/messages"] = (200, "text/event-stream", sse_bytes(ANTHROPIC_EVENTS))
    provider = AnthropicProvider(config("anthropic", url + "/v1"))
    try:
        chunks = [c async for c in provider.stream(BODY, "claude-x", include_usage=True)]
    finally:
        await provider.aclose()
    assert canned.seen[0][3]["stream"] is True
    assert "".join(c.text for c in chunks) == "Hello"
    assert payloads(chunks)[-1]["usage"]["completion_tokens"] == 2


async def test_anthropic_stream_cut_before_message_stop_fails(server: tuple[Canned, str]) -> None:
    canned, url = server
    canned.replies["/v1/messages"] = (200, "text/event-stream", sse_bytes(ANTHROPIC_EVENTS[:-2]))
    provider = AnthropicProvider(config("anthropic", url))
    seen: list[str] = []
    try:
        with pytest.raises(UpstreamConnectionError):
            async for chunk in provider.stream(BODY, "claude-x", include_usage=False):
                seen.append(chunk.text)
    finally:
        await provider.aclose()
    assert "".join(seen) == "Hello"


async def test_anthropic_error_status_and_models(server: tuple[Canned, str]) -> None:
    canned, url = server
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    canned.replies["/v1/messages"] = (529, JSON, orjson.dumps(overloaded))
    canned.replies["/v1/models"] = (200, JSON, orjson.dumps({"data": [{"id": "claude-x"}], "has_more": False}))
    provider = AnthropicProvider(config("anthropic", url))
    try:
        with pytest.raises(UpstreamStatusError) as info:
            await provider.complete(BODY, "claude-x")
        with pytest.raises(UpstreamStatusError):
            _ = [c async for c in provider.stream(BODY, "claude-x", include_usage=False)]
        assert await provider.list_models() == ["claude-x"]
        await provider.check_health()
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.upstream_status == 529
    assert [path for _m, path, _h, _b in canned.seen[-2:]] == ["/v1/models?limit=1000", "/v1/models"]


async def test_anthropic_rejects_custom_tools_before_any_io(server: tuple[Canned, str]) -> None:
    canned, url = server
    provider = AnthropicProvider(config("anthropic", url))
    custom = {**BODY, "n": 2, "tools": [{"type": "custom", "custom": {"name": "sql"}}]}
    try:
        with pytest.raises(InvalidRequestError) as plain:
            await provider.complete(custom, "claude-x")
        with pytest.raises(InvalidRequestError) as streamed:
            provider.stream(custom, "claude-x", include_usage=False)
    finally:
        await provider.aclose()
    assert plain.value.param == streamed.value.param == "tools[0]"
    assert canned.seen == []


async def test_anthropic_answers_n_choices_with_one_call_each(server: tuple[Canned, str]) -> None:
    canned, url = server
    canned.replies["/v1/messages"] = (200, JSON, orjson.dumps(ANTHROPIC_MESSAGE))
    provider = AnthropicProvider(config("anthropic", url))
    try:
        done = await provider.complete({**BODY, "n": 3}, "claude-x")
    finally:
        await provider.aclose()
    assert [choice["index"] for choice in done.body["choices"]] == [0, 1, 2]
    assert done.usage.prompt_tokens == 9 and done.body["usage"]["completion_tokens"] == 3
    assert len(canned.seen) == 3 and all("n" not in body for _m, _p, _h, body in canned.seen)


# --- Ollama --------------------------------------------------------------------------------------------------
def ollama_line(content: str, done: bool = False) -> dict[str, Any]:
    line: dict[str, Any] = {"model": "llama3", "message": {"role": "assistant", "content": content}, "done": done}
    if done:
        line.update(done_reason="stop", prompt_eval_count=4, eval_count=2)
    return line


async def test_ollama_complete_and_stream(server: tuple[Canned, str]) -> None:
    canned, url = server
    provider = OllamaProvider(config("ollama", url, api_key=""))
    try:
        canned.replies["/api/chat"] = (200, JSON, orjson.dumps(ollama_line("Hello", done=True)))
        done = await provider.complete(BODY, "llama3")
        lines = [ollama_line("Hel"), ollama_line("lo"), ollama_line("", done=True)]
        canned.replies["/api/chat"] = (200, "application/x-ndjson", ndjson_bytes(lines))
        chunks = [c async for c in provider.stream(BODY, "llama3", include_usage=False)]
    finally:
        await provider.aclose()
    assert done.text == "Hello" and done.usage.total_tokens == 6
    assert canned.seen[0][3]["stream"] is False and canned.seen[1][3]["stream"] is True
    assert "Authorization" not in canned.seen[0][2]
    assert "".join(c.text for c in chunks) == "Hello"
    assert chunks[-1].usage is not None and all(not p.get("usage") for p in payloads(chunks))  # not asked for


async def test_ollama_stream_without_done_fails(server: tuple[Canned, str]) -> None:
    canned, url = server
    canned.replies["/api/chat"] = (200, "application/x-ndjson", ndjson_bytes([ollama_line("Hel")]))
    provider = OllamaProvider(config("ollama", url, api_key=""))
    try:
        with pytest.raises(UpstreamConnectionError):
            _ = [c async for c in provider.stream(BODY, "llama3", include_usage=False)]
    finally:
        await provider.aclose()


async def test_ollama_errors_models_and_embeddings(server: tuple[Canned, str]) -> None:
    canned, url = server
    canned.replies["/api/chat"] = (404, JSON, b'{"error":"model \\"x\\" not found, try pulling it first"}')
    canned.replies["/api/tags"] = (200, JSON, orjson.dumps({"models": [{"name": "llama3:latest"}, {"model": "qwen"}]}))
    canned.replies["/api/embed"] = (200, JSON, orjson.dumps({"model": "nomic", "embeddings": [[0.5, 0.5], [1, 0]]}))
    provider = OllamaProvider(config("ollama", url, api_key="proxy-key"))
    try:
        with pytest.raises(UpstreamStatusError) as info:
            await provider.complete(BODY, "x")
        assert await provider.list_models() == ["llama3:latest", "qwen"]
        await provider.check_health()
        assert await provider.embed(["a", "b"], "nomic") == [[0.5, 0.5], [1.0, 0.0]]
        assert await provider.embed([], "nomic") == []
    finally:
        await provider.aclose()
    assert info.value.code == "model_not_found" and not info.value.retryable
    assert canned.seen[0][2]["Authorization"] == "Bearer proxy-key"
    assert canned.seen[-1][3] == {"model": "nomic", "input": ["a", "b"]}


async def test_ollama_mid_stream_error_line(server: tuple[Canned, str]) -> None:
    canned, url = server
    body = ndjson_bytes([ollama_line("Hel"), {"error": "unexpected EOF"}])
    canned.replies["/api/chat"] = (200, "application/x-ndjson", body)
    provider = OllamaProvider(config("ollama", url, api_key=""))
    try:
        with pytest.raises(UpstreamError, match="failed mid-stream") as failed:
            _ = [c async for c in provider.stream(BODY, "llama3", include_usage=False)]
    finally:
        await provider.aclose()
    assert failed.value.detail == "unexpected EOF"  # the upstream's words: for the log, not the client


# --- OpenAI embeddings -----------------------------------------------------------------------------------------
async def test_openai_embed_orders_by_index(server: tuple[Canned, str]) -> None:
    canned, url = server
    data = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
            {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    canned.replies["/v1/embeddings"] = (200, JSON, orjson.dumps(data))
    provider = OpenAIProvider(config("openai", url + "/v1"))
    try:
        vectors = await provider.embed(["first", "second"], "text-embedding-3-small")
    finally:
        await provider.aclose()
    assert vectors == [[1.0, 0.0], [0.0, 1.0]]
    method, path, headers, sent = canned.seen[0]
    assert (method, path, headers["Authorization"]) == ("POST", "/v1/embeddings", "Bearer sk-test")
    assert sent == {"model": "text-embedding-3-small", "input": ["first", "second"], "encoding_format": "float"}
