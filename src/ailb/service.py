"""ChatService: the one use-case flow of a chat request.

1. recall the session's memory and retrieve RAG passages (both optional, both off the event loop),
2. route the request to a deployment,
3. remember the turn once the answer is whole (never blocking the reply).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ailb.contract import ChatCall, Completion, StreamChunk, message_text
from ailb.errors import InvalidRequestError
from ailb.observability.tracing import NO_TRACING, AttributeValue, Tracing
from ailb.routing.streaming import PassedChunks

if TYPE_CHECKING:
    from ailb.governance.meter import Meter
    from ailb.memory.service import MemoryService
    from ailb.rag.service import RagService
    from ailb.routing.catalog import Target
    from ailb.routing.router import RouteInfo, Router

Remember = Callable[[ChatCall, str, str, "RouteInfo", int, int], None]
"""``ChatService._remember``: (call, user text, answer, route, prompt tokens, completion tokens)."""


@dataclass(slots=True)
class Context:
    """What memory and RAG added to a request."""

    memory_turns: int | None = None  # None when the request has no session
    rag_sources: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ChatResult:
    """``call``: the call as it was routed (with what memory and RAG added)."""

    completion: Completion
    route: RouteInfo
    context: Context
    call: ChatCall


@dataclass(slots=True)
class ChatStream:
    """A routed stream. ``chunks`` stores the turn in memory only when the stream ends cleanly. ``call``: the call
    as it was routed (with what memory and RAG added)."""

    route: RouteInfo
    context: Context
    chunks: AsyncIterator[StreamChunk]
    call: ChatCall


class ChatService:
    def __init__(
        self,
        router: Router,
        memory: MemoryService | None,
        rag: RagService | None,
        tracing: Tracing = NO_TRACING,
        collection_limits: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """``collection_limits``: tenant → the knowledge-base collections its key may use (absent: every one)."""
        self.router = router
        self.memory = memory
        self.rag = rag
        self.tracing = tracing
        self.collection_limits: Mapping[str, frozenset[str]] = collection_limits or {}

    async def complete(self, call: ChatCall, meter: Meter | None = None) -> ChatResult:
        """``meter``: the client key's limits for this request (``None`` for a key without any)."""
        targets = self.router.resolve(call.model)  # an unknown model costs no memory or RAG lookup
        sent, user_text, context, prompt_tokens = await self._prepare(call, targets, meter)
        try:
            completion, route = await self.router.complete(sent, targets=targets, prompt_tokens=prompt_tokens)
        except BaseException:
            if meter is not None:
                meter.release()
            raise
        if meter is not None:
            meter.settle(completion.usage, completion.text, route)
        if call.session_id is not None:
            usage = completion.usage
            self._remember(call, user_text, completion.text, route, usage.prompt_tokens, usage.completion_tokens)
        return ChatResult(completion, route, context, sent)

    async def stream(self, call: ChatCall, meter: Meter | None = None) -> ChatStream:
        targets = self.router.resolve(call.model)
        sent, user_text, context, prompt_tokens = await self._prepare(call, targets, meter)
        try:
            routed = await self.router.stream(sent, targets=targets, prompt_tokens=prompt_tokens)
        except BaseException:
            if meter is not None:
                meter.release()
            raise
        chunks = routed.chunks
        if call.session_id is not None and self.memory is not None:
            chunks = RememberedChunks(chunks, self._remember, call, user_text, routed.info)
        if meter is not None:
            chunks = meter.track(chunks, routed.info)
        return ChatStream(routed.info, context, chunks, sent)

    async def _prepare(
        self, call: ChatCall, targets: tuple[Target, ...], meter: Meter | None
    ) -> tuple[ChatCall, str, Context, int | None]:
        """The call to send (memory and RAG added) and, for a metered key, its admission with the prompt as it
        will be sent."""
        if meter is None:
            return (*await self._augment(call), None)
        if (call.session_id is not None and self.memory is not None) or call.rag_collections:
            await meter.take_request()  # a client over its rpm must not cost a memory or RAG lookup
        sent, user_text, context = await self._augment(call)
        return sent, user_text, context, await meter.reserve(sent, self.router, targets)

    async def _augment(self, call: ChatCall) -> tuple[ChatCall, str, Context]:
        """The call with memory and RAG context after the client's system messages (``call`` itself when there is
        none), the user's last message (to remember; "" when the turn is not remembered), and what was added."""
        messages = call.messages
        context = Context()
        injected: list[dict[str, Any]] = []
        if call.session_id is not None and self.memory is not None:
            attributes = {"gen_ai.operation.name": "search_memory", "gen_ai.conversation.id": call.session_id}
            with self.tracing.span("search_memory", attributes) as span:
                recall = await self.memory.recall(call.tenant, call.session_id, messages)
                span.set("ailb.memory.turns", recall.turns)
            context.memory_turns = recall.turns
            if recall.message is not None:
                injected.append(recall.message)
        if call.rag_collections:
            if self.rag is None:
                raise InvalidRequestError(
                    "Knowledge bases are disabled on this gateway (ENABLE_RAG=false).",
                    param="rag_collection",
                    code="rag_disabled",
                )
            with self.tracing.span("retrieval", _retrieval(call)) as span:
                permitted = self.collection_limits.get(call.tenant)
                retrieval = await self.rag.retrieve(call.rag_collections, messages, call.rag_top_k, permitted)
                span.set("ailb.rag.sources", len(retrieval.sources))
            if retrieval.message is not None:
                injected.append(retrieval.message)
                context.rag_sources = retrieval.sources
        remembered = call.session_id is not None and self.memory is not None
        return call.with_injected(injected), _last_user_text(messages) if remembered else "", context

    def _remember(
        self,
        call: ChatCall,
        user_text: str,
        answer: str,
        route: RouteInfo,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        if self.memory is None or call.session_id is None:
            return
        from ailb.memory.service import Turn

        self.memory.remember(
            Turn(
                tenant=call.tenant,
                session_id=call.session_id,
                user=user_text,
                assistant=answer,
                model=route.model,
                deployment=route.deployment,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                timestamp=time.time(),
            )
        )


class RememberedChunks(PassedChunks):
    """A stream's chunks, passed through; the turn is remembered once the stream ends cleanly with a finish reason
    (not when it fails, stops short or the client closes it)."""

    def __init__(
        self,
        chunks: AsyncIterator[StreamChunk],
        remember: Remember,
        call: ChatCall,
        user_text: str,
        route: RouteInfo,
    ) -> None:
        super().__init__(chunks)
        self._remember = remember
        self._call = call
        self._user_text = user_text
        self._route = route
        self._finished = False

    async def __anext__(self) -> StreamChunk:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            if self._finished:
                self._finished = False  # remembered once
                usage = self._usage
                prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (0, 0)
                self._remember(self._call, self._user_text, self._text(), self._route, prompt, completion)
            raise
        return self._seen(chunk)

    def _seen(self, chunk: StreamChunk) -> StreamChunk:
        self._finished = self._finished or chunk.finish_reason is not None
        return super()._seen(chunk)


def _retrieval(call: ChatCall) -> dict[str, AttributeValue]:
    return {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": ",".join(call.rag_collections),
        "gen_ai.retrieval.top_k": call.rag_top_k,
    }


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""
