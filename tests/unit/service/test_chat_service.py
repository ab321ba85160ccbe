"""ChatService on the in-memory memory and RAG stores, a word-hashing embedder and a real router over scripted
in-process providers: what memory and RAG add to the prompt, when a turn is remembered, how errors come back,
and that the caller's call is never changed. No model, no ChromaDB, no socket."""

from __future__ import annotations

import copy
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

from ailb.contract import ChatCall, Completion, SessionId, StreamChunk, Usage
from ailb.errors import InvalidRequestError, ModelNotFoundError, UpstreamError
from ailb.governance.governor import Governor
from ailb.ingress.chat.request import validate_chat
from ailb.memory.inmemory import InMemoryTurnStore
from ailb.memory.models import Turn
from ailb.memory.service import MemoryService
from ailb.prompt_blocks import MEMORY_TAG, SOURCES_TAG
from ailb.rag.inmemory import InMemoryVectorStore
from ailb.rag.models import DocumentInput
from ailb.rag.service import RagService
from ailb.routing.router import Router
from ailb.service import ChatService
from ailb.settings import ClientKeyConfig, MemoryConfig, RagConfig
from ailb.state import InProcessLimitStore
from ailb.tenancy import client_key
from tests.unit.routing.support import (
    ScriptedProvider,
    completion,
    config,
    content,
    final_chunk,
    role_chunk,
    settings,
    status_error,
)
from tests.unit.word_embedder import WordEmbedder

TENANT = "t1"
SESSION = SessionId.check("chat-1")
POLICIES = [
    DocumentInput("vacation.md", "Employees receive 25 vacation days per year. Unused vacation days expire in March."),
    DocumentInput("parking.md", "The parking garage opens at 7 and has 40 spaces for visitors."),
]


class RecordingProvider(ScriptedProvider):
    """A scripted provider that also keeps a deep copy of every body it was sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: list[dict[str, Any]] = []

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        self.bodies.append(copy.deepcopy(dict(body)))
        return await super().complete(body, model)

    def stream(self, body: Mapping[str, Any], model: str, include_usage: bool) -> AsyncIterator[StreamChunk]:
        self.bodies.append(copy.deepcopy(dict(body)))
        return super().stream(body, model, include_usage)

    def sent_messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.bodies[-1]["messages"]
        return messages


class Counts:
    """What memory, RAG and the governor report they did (their observer and metrics hooks)."""

    def __init__(self) -> None:
        self.recalls = 0
        self.retrievals = 0
        self.spent_usd = 0.0

    def memory_recalled(self, seconds: float) -> None:
        self.recalls += 1

    def memory_stored(self, seconds: float) -> None:
        pass

    def memory_failed(self, operation: str) -> None:
        raise AssertionError(f"memory {operation} failed")

    def memory_dropped_turn(self) -> None:
        raise AssertionError("memory dropped a turn")

    def rag_retrieved(self, seconds: float) -> None:
        self.retrievals += 1

    def rag_failed(self, operation: str) -> None:
        raise AssertionError(f"RAG {operation} failed")

    def rag_ingested(self, chunks: int) -> None:
        pass

    def key_spent(self, key: str, usd: float) -> None:
        self.spent_usd += usd

    def key_rejected(self, key: str, reason: str) -> None:
        raise AssertionError(f"key {key} refused: {reason}")


class Parts:
    def __init__(self, memory: MemoryService, rag: RagService, counts: Counts) -> None:
        self.memory = memory
        self.rag = rag
        self.counts = counts

    def service(self, *providers: ScriptedProvider, memory: bool = True, rag: bool = True) -> ChatService:
        cfg = settings(*(p.config for p in providers), strategy="failover")
        router = Router(cfg, {p.config.name: p for p in providers}, rng=random.Random(1))
        return ChatService(router, self.memory if memory else None, self.rag if rag else None)

    async def turns(self, session: str = SESSION) -> list[dict[str, Any]]:
        await self.memory.flush()
        return await self.memory.list_turns(TENANT, session)


@pytest_asyncio.fixture
async def parts() -> AsyncIterator[Parts]:
    counts = Counts()
    memory = MemoryService(
        MemoryConfig(), InMemoryTurnStore(), WordEmbedder(), observer=counts, write_linger=0, write_retries=()
    )
    rag_config = RagConfig(enabled=True, chunk_tokens=40, chunk_overlap=8, min_score=0.2)
    rag = RagService(rag_config, InMemoryVectorStore(), WordEmbedder(), metrics=counts, batch_size=4)
    await memory.start()
    await rag.start()
    await rag.create_collection("policies")
    await rag.ingest("policies", POLICIES)
    yield Parts(memory, rag, counts)
    await rag.aclose()
    await memory.aclose(flush_seconds=5)


def provider(name: str = "a", **script: Any) -> RecordingProvider:
    return RecordingProvider(config(name), **script)


def chat(
    *messages: dict[str, Any],
    session: SessionId | None = SESSION,
    collections: tuple[str, ...] = (),
    stream: bool = False,
    model: str = "gpt-4o",
) -> ChatCall:
    sent = list(messages) or [{"role": "user", "content": "What is my name?"}]
    body = {"model": model, "messages": sent}
    return ChatCall(
        body=body, model=model, stream=stream, include_usage=False, tenant=TENANT, session_id=session,
        rag_collections=collections,
    )  # fmt: skip


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


async def drain(chunks: AsyncIterator[StreamChunk]) -> list[str]:
    return [chunk.text async for chunk in chunks]


# --- memory -----------------------------------------------------------------------------------------------------
async def test_an_earlier_turn_is_recalled_after_the_system_messages(parts: Parts) -> None:
    parts.memory.remember(Turn(TENANT, SESSION, "My name is Alice", "Nice to meet you, Alice!"))
    upstream = provider()
    system = {"role": "system", "content": "Be brief."}
    result = await parts.service(upstream).complete(chat(system, user("What is my name?")))
    sent = upstream.sent_messages()
    assert sent[0] == system and sent[-1] == user("What is my name?") and len(sent) == 3
    assert sent[1]["role"] == "system" and f"<{MEMORY_TAG}>" in sent[1]["content"]
    assert "My name is Alice" in sent[1]["content"] and "Nice to meet you, Alice!" in sent[1]["content"]
    assert result.context.memory_turns == 1 and result.call.messages == sent


async def test_history_the_client_sent_again_is_not_recalled_twice(parts: Parts) -> None:
    parts.memory.remember(Turn(TENANT, SESSION, "My name is Alice", "Nice to meet you, Alice!"))
    upstream = provider()
    history = [user("My name is Alice"), assistant("Nice to meet you, Alice!"), user("What is my name?")]
    result = await parts.service(upstream).complete(chat(*history))
    assert upstream.sent_messages() == history and result.context.memory_turns == 0


async def test_a_request_without_a_session_neither_recalls_nor_remembers(parts: Parts) -> None:
    parts.memory.remember(Turn(TENANT, SESSION, "My name is Alice", "Nice to meet you, Alice!"))
    upstream = provider()
    result = await parts.service(upstream).complete(chat(session=None))
    assert upstream.sent_messages() == [user("What is my name?")] and result.context.memory_turns is None
    assert len(await parts.turns()) == 1


async def test_a_whole_answer_is_remembered_with_its_route_and_usage(parts: Parts) -> None:
    upstream = provider(outcomes=[completion("You are Alice.", prompt=12, completion_tokens=4)])
    await parts.service(upstream).complete(chat())
    [turn] = await parts.turns()
    assert (turn["user"], turn["assistant"]) == ("What is my name?", "You are Alice.")
    assert (turn["deployment"], turn["model"]) == ("a", "gpt-4o")
    assert (turn["prompt_tokens"], turn["completion_tokens"]) == (12, 4)


async def test_a_stream_is_remembered_once_it_ends_cleanly(parts: Parts) -> None:
    upstream = provider(streams=[[role_chunk(), content("You are "), content("Alice."), final_chunk(9, 3)]])
    routed = await parts.service(upstream).stream(chat(stream=True))
    assert await parts.turns() == []  # nothing before the answer is whole
    assert await drain(routed.chunks) == ["", "You are ", "Alice.", ""]
    [turn] = await parts.turns()
    assert turn["assistant"] == "You are Alice." and (turn["prompt_tokens"], turn["completion_tokens"]) == (9, 3)


async def test_a_stream_is_remembered_with_the_chunks_taken_at_hand(parts: Parts) -> None:
    whole = StreamChunk(b"data: all\n\n", "You are Alice.", has_content=True, usage=Usage(9, 3), finish_reason="stop")
    upstream = provider(streams=[[role_chunk(), whole]])
    chunks: Any = (await parts.service(upstream).stream(chat(stream=True))).chunks
    assert (await anext(chunks)).text == ""
    assert chunks.ready() == [whole]  # as the SSE writer takes what is at hand, past __anext__
    assert [c async for c in chunks] == []
    [turn] = await parts.turns()
    assert turn["assistant"] == "You are Alice." and (turn["prompt_tokens"], turn["completion_tokens"]) == (9, 3)


async def test_a_stream_that_fails_after_its_first_content_is_not_remembered(parts: Parts) -> None:
    broken = status_error("a", 502)
    upstream = provider(streams=[[role_chunk(), content("You are "), broken]])
    routed = await parts.service(upstream).stream(chat(stream=True))
    with pytest.raises(UpstreamError):
        await drain(routed.chunks)
    assert await parts.turns() == []


async def test_a_stream_that_stops_without_finishing_is_not_remembered(parts: Parts) -> None:
    upstream = provider(streams=[[role_chunk(), content("You are ")]])  # no chunk with a finish reason
    routed = await parts.service(upstream).stream(chat(stream=True))
    assert await drain(routed.chunks) == ["", "You are "]
    assert await parts.turns() == []  # half an answer is no turn


async def test_a_stream_the_client_leaves_early_is_not_remembered(parts: Parts) -> None:
    upstream = provider(streams=[[role_chunk(), content("You are "), content("Alice."), final_chunk()]])
    routed = await parts.service(upstream).stream(chat(stream=True))
    chunks = routed.chunks
    assert (await anext(chunks)).text == ""
    await chunks.aclose()  # type: ignore[attr-defined]
    assert await parts.turns() == [] and upstream.closed_streams == 1


# --- RAG --------------------------------------------------------------------------------------------------------
async def test_retrieved_passages_are_added_as_a_sources_block(parts: Parts) -> None:
    upstream = provider()
    question = user("How many vacation days per year?")
    result = await parts.service(upstream).complete(chat(question, session=None, collections=("policies",)))
    sent = upstream.sent_messages()
    assert len(sent) == 2 and sent[-1] == question and f"<{SOURCES_TAG}>" in sent[0]["content"]
    assert "25 vacation days" in sent[0]["content"] and "parking" not in sent[0]["content"]
    assert result.context.rag_sources == ["vacation.md"] and result.call.injected == (sent[0],)


async def test_memory_comes_before_the_sources_and_both_after_the_system_messages(parts: Parts) -> None:
    parts.memory.remember(Turn(TENANT, SESSION, "My name is Alice", "Nice to meet you, Alice!"))
    upstream = provider()
    system = {"role": "developer", "content": "Answer in French."}
    await parts.service(upstream).complete(chat(system, user("vacation days per year?"), collections=("policies",)))
    sent = upstream.sent_messages()
    assert [m["role"] for m in sent] == ["developer", "system", "system", "user"]
    assert sent[0] == system and sent[3] == user("vacation days per year?")
    assert f"<{MEMORY_TAG}>" in sent[1]["content"] and f"<{SOURCES_TAG}>" in sent[2]["content"]


async def test_knowledge_bases_asked_of_a_gateway_without_rag_are_a_400(parts: Parts) -> None:
    upstream = provider()
    with pytest.raises(InvalidRequestError) as refused:
        await parts.service(upstream, rag=False).complete(chat(collections=("policies",)))
    assert refused.value.code == "rag_disabled" and upstream.bodies == []


# --- errors -----------------------------------------------------------------------------------------------------
async def test_an_unknown_model_is_a_404_before_any_memory_or_rag_work(parts: Parts) -> None:
    upstream = provider()
    for streamed in (False, True):
        call = chat(model="no-such-model", collections=("policies",), stream=streamed)
        with pytest.raises(ModelNotFoundError):
            await (parts.service(upstream).stream(call) if streamed else parts.service(upstream).complete(call))
    assert parts.counts.recalls == 0 and parts.counts.retrievals == 0 and upstream.bodies == []
    await parts.service(upstream).complete(chat(collections=("policies",)))  # the counters do count
    assert parts.counts.recalls == 1 and parts.counts.retrievals == 1


async def test_an_upstream_failure_comes_back_and_nothing_is_remembered(parts: Parts) -> None:
    upstream = provider(outcomes=[status_error("a", 500)])
    with pytest.raises(UpstreamError) as failed:
        await parts.service(upstream).complete(chat())
    assert failed.value.deployment == "a" and await parts.turns() == []


async def test_a_stream_that_fails_before_any_content_fails_over(parts: Parts) -> None:
    first = provider("a", streams=[[role_chunk(), status_error("a", 503)]])
    second = provider("b", streams=[[role_chunk(), content("Alice"), final_chunk()]])
    routed = await parts.service(first, second).stream(chat(stream=True))
    assert routed.route.deployment == "b" and await drain(routed.chunks) == ["", "Alice", ""]
    assert [t["deployment"] for t in await parts.turns()] == ["b"]
    assert first.sent_messages() == second.sent_messages()  # the same augmented call on every attempt


async def test_a_stream_failing_everywhere_raises_from_stream(parts: Parts) -> None:
    upstream = provider(streams=[[status_error("a", 500)]])
    with pytest.raises(UpstreamError):
        await parts.service(upstream).stream(chat(stream=True))
    assert await parts.turns() == []


# --- the call ---------------------------------------------------------------------------------------------------
async def test_the_callers_call_is_not_changed(parts: Parts) -> None:
    parts.memory.remember(Turn(TENANT, SESSION, "My name is Alice", "Nice to meet you, Alice!"))
    service = parts.service(provider(), provider("b"))
    for streamed in (False, True):
        call = chat(user("vacation days per year?"), collections=("policies",), stream=streamed)
        before = copy.deepcopy(call.body)
        if streamed:
            routed = await service.stream(call)
            await drain(routed.chunks)
            sent = routed.call
        else:
            sent = (await service.complete(call)).call
        assert call.body == before and call.injected == () and call.messages == [user("vacation days per year?")]
        assert sent is not call and len(sent.injected) == 2 and sent.messages[-1] == user("vacation days per year?")
        assert (sent.model, sent.tenant, sent.session_id, sent.stream) == (call.model, TENANT, SESSION, streamed)


class _NotingLookups(dict[str, Any]):
    def __init__(self, routes: Mapping[str, Any], names: list[str]) -> None:
        super().__init__(routes)
        self.names = names

    def __getitem__(self, name: str) -> Any:
        self.names.append(name)
        return super().__getitem__(name)


async def test_the_model_is_resolved_once_per_request(parts: Parts, monkeypatch: pytest.MonkeyPatch) -> None:
    service = parts.service(provider())
    catalog = service.router.catalog
    looked_up: list[str] = []
    # The catalog's own lookup (``Catalog.targets``), watched through the routes it reads: a compiled router calls
    # the method directly, past anything patched on the catalog.
    monkeypatch.setattr(catalog, "_routes", _NotingLookups(catalog._routes, looked_up))
    await service.complete(chat(collections=("policies",)))
    await drain((await service.stream(chat(stream=True))).chunks)
    assert looked_up == ["gpt-4o", "gpt-4o"]
    governor = Governor(InProcessLimitStore(), parts.counts)
    limited = client_key("team-key", ClientKeyConfig(key="team-key", name="team", rpm=100, max_budget_usd=5.0))
    metered = await service.complete(chat(), governor.meter(limited, "gpt-4o"))  # admission prices the targets
    await governor.drain()
    assert metered.completion.text == "hi" and looked_up == ["gpt-4o"] * 3 and parts.counts.spent_usd > 0


async def test_a_call_without_anything_to_add_is_sent_as_it_is(parts: Parts) -> None:
    upstream = provider()
    call = chat(session=None)
    result = await parts.service(upstream).complete(call)
    assert result.call is call and upstream.bodies == [call.body]


def test_a_call_cannot_be_changed_in_place() -> None:
    call = chat()
    with pytest.raises(AttributeError):
        call.session_id = None  # type: ignore[misc]
    added = call.with_injected([{"role": "system", "content": "x"}])
    assert added.messages[0] == {"role": "system", "content": "x"} and call.messages == [user("What is my name?")]


def test_a_session_id_is_checked_where_it_comes_in_and_taken_as_it_is_after() -> None:
    checked = SessionId.check("user-42:support")
    assert SessionId.check(checked) is checked and SessionId.is_valid(checked)
    for bad in ("sess\n", "", "a" * 129, "has space"):
        assert not SessionId.is_valid(bad)
        with pytest.raises(InvalidRequestError) as refused:
            SessionId.check(bad, source="X-Session-ID: ")
        assert refused.value.param == "session_id" and refused.value.message.startswith("X-Session-ID: session_id")
    body = {"model": "gpt-4o", "messages": [user("hi")], "session_id": "s-1"}
    assert type(validate_chat(body, TENANT, None, None).session_id) is SessionId
    headed = validate_chat({"model": "gpt-4o", "messages": [user("hi")]}, TENANT, "s-2", None)
    assert type(headed.session_id) is SessionId and headed.session_id == "s-2"
