"""ChatService: the one use-case flow of a chat request.

1. recall the session's memory and retrieve RAG passages (both optional, both off the event loop),
2. route the request to a deployment,
3. remember the turn once the answer is whole (never blocking the reply).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ailb.contract import ChatCall, Completion, StreamChunk, message_text
from ailb.errors import InvalidRequestError
from ailb.observability.tracing import NO_TRACING, AttributeValue, Tracing

if TYPE_CHECKING:
    from ailb.governance.meter import Meter
    from ailb.memory.service import MemoryService
    from ailb.rag.service import RagService
    from ailb.routing.router import RouteInfo, Router


@dataclass(slots=True)
class Context:
    """What memory and RAG added to a request."""

    memory_turns: int | None = None  # None when the request has no session
    rag_sources: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ChatResult:
    completion: Completion
    route: RouteInfo
    context: Context


@dataclass(slots=True)
class ChatStream:
    """A routed stream. ``chunks`` stores the turn in memory only when the stream ends cleanly."""

    route: RouteInfo
    context: Context
    chunks: AsyncIterator[StreamChunk]


class ChatService:
    def __init__(
        self, router: Router, memory: MemoryService | None, rag: RagService | None, tracing: Tracing = NO_TRACING
    ) -> None:
        self.router = router
        self.memory = memory
        self.rag = rag
        self.tracing = tracing

    async def complete(self, call: ChatCall, meter: Meter | None = None) -> ChatResult:
        """``meter``: the client key's limits for this request (``None`` for a key without any)."""
        self.router.resolve(call.model)
        user_text, context, prompt_tokens = await self._prepare(call, meter)
        try:
            completion, route = await self.router.complete(call, prompt_tokens=prompt_tokens)
        except BaseException:
            if meter is not None:
                meter.release()
            raise
        if meter is not None:
            meter.settle(completion.usage, completion.text, route)
        if call.session_id is not None:
            self._remember(
                call,
                user_text,
                completion.text,
                route,
                completion.usage.prompt_tokens,
                completion.usage.completion_tokens,
            )
        return ChatResult(completion, route, context)

    async def stream(self, call: ChatCall, meter: Meter | None = None) -> ChatStream:
        self.router.resolve(call.model)
        user_text, context, prompt_tokens = await self._prepare(call, meter)
        try:
            routed = await self.router.stream(call, prompt_tokens=prompt_tokens)
        except BaseException:
            if meter is not None:
                meter.release()
            raise
        chunks = routed.chunks
        if call.session_id is not None and self.memory is not None:
            chunks = self._remember_after(call, user_text, routed.info, chunks)
        if meter is not None:
            chunks = meter.track(chunks, routed.info)
        return ChatStream(routed.info, context, chunks)

    async def _prepare(self, call: ChatCall, meter: Meter | None) -> tuple[str, Context, int | None]:
        """Augment the prompt and, for a metered key, admit the request with the prompt as it will be sent."""
        if meter is None:
            return (*await self._augment(call), None)
        if (call.session_id is not None and self.memory is not None) or call.rag_collections:
            await meter.take_request()  # a client over its rpm must not cost a memory or RAG lookup
        user_text, context = await self._augment(call)
        return user_text, context, await meter.reserve(call, self.router)

    async def _augment(self, call: ChatCall) -> tuple[str, Context]:
        """Put memory and RAG context into ``call.body["messages"]``, after the client's system messages."""
        messages: list[dict[str, Any]] = call.body["messages"]
        user_text = _last_user_text(messages)
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
                retrieval = await self.rag.retrieve(call.tenant, call.rag_collections, messages, call.rag_top_k)
                span.set("ailb.rag.sources", len(retrieval.sources))
            if retrieval.message is not None:
                injected.append(retrieval.message)
                context.rag_sources = retrieval.sources
        if injected:
            split = _after_system(messages)
            call.body["messages"] = [*messages[:split], *injected, *messages[split:]]
            call.injected = tuple(injected)
        return user_text, context

    async def _remember_after(
        self, call: ChatCall, user_text: str, route: RouteInfo, chunks: AsyncIterator[StreamChunk]
    ) -> AsyncIterator[StreamChunk]:
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        finished = False
        try:
            async for chunk in chunks:
                if chunk.text:
                    parts.append(chunk.text)
                if chunk.usage is not None:
                    prompt_tokens = chunk.usage.prompt_tokens
                    completion_tokens = chunk.usage.completion_tokens
                finished = finished or chunk.finish_reason is not None
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        if finished:
            self._remember(call, user_text, "".join(parts), route, prompt_tokens, completion_tokens)

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


def _after_system(messages: list[dict[str, Any]]) -> int:
    index = 0
    while index < len(messages) and messages[index].get("role") in ("system", "developer"):
        index += 1
    return index
