"""How a Messages request reaches each deployment the router tries: passed through to a provider that speaks
the Messages API itself (Anthropic), translated for every other one.

The choice is made per attempt, so one request may fail over from an Anthropic deployment to an OpenAI one and
the client still reads one Messages answer. Answers of translated attempts are turned into Messages answers in
the attempt itself (``response``, ``stream``), so whichever deployment answers, the stream the client gets has
the same shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import orjson

from ailb.contract import ChatCall, Completion, StreamChunk
from ailb.ingress.messages.request import MessagesSpec, Translation, injected_system, parse
from ailb.ingress.messages.response import message_from_completion
from ailb.ingress.messages.stream import MessageEvents
from ailb.providers.base import Provider


@runtime_checkable
class MessagesPassthrough(Protocol):
    """A provider that takes Messages requests as they are (``providers.anthropic.adapter``)."""

    async def complete_native(self, payload: bytes) -> Completion: ...

    def stream_native(self, payload: bytes) -> AsyncIterator[StreamChunk]: ...

    async def count_tokens_native(self, payload: bytes) -> int: ...


@dataclass(frozen=True, slots=True)
class MessagesEgress:
    translation: Translation
    spec: MessagesSpec

    async def complete(self, provider: Provider, call: ChatCall, model: str) -> Completion:
        if isinstance(provider, MessagesPassthrough):
            return await provider.complete_native(native_payload(self.translation.native, model, False, call))
        if self.translation.refusal is not None:
            raise self.translation.refusal
        completion = await provider.complete(call.body, model)
        return message_from_completion(completion, self.spec, provider.config.name)

    def stream(self, provider: Provider, call: ChatCall, model: str) -> AsyncIterator[StreamChunk]:
        if isinstance(provider, MessagesPassthrough):
            return provider.stream_native(native_payload(self.translation.native, model, True, call))
        if self.translation.refusal is not None:
            raise self.translation.refusal
        events = MessageEvents(self.spec, provider.config.name)
        return events.translate(provider.stream(call.body, model, False))


def messages_call(data: dict[str, Any], tenant: str, headers: Mapping[str, str]) -> ChatCall:
    """A Messages request as the call the router sends: the canonical body (for memory, RAG, token counts and
    translated attempts) with the egress that passes it through or translates each attempt's answer."""
    call, translation, spec = parse(data, tenant, headers)
    return replace(call, egress=MessagesEgress(translation, spec))


def native_payload(native: Mapping[str, Any], model: str, stream: bool, call: ChatCall) -> bytes:
    """The client's request for Anthropic: the upstream model name, the stream flag, memory and RAG added to
    ``system``; thinking blocks without a signature (AILB's rendering of another provider's reasoning, which
    Anthropic would refuse) are left out of the conversation."""
    body = dict(native)
    body["model"] = model
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    if call.injected:
        body["system"] = injected_system(native.get("system"), call.injected)
    messages = body.get("messages")
    if isinstance(messages, list) and any(_has_unsigned_thinking(m) for m in messages):
        body["messages"] = [_without_unsigned_thinking(m) for m in messages]
    return orjson.dumps(body)


def _unsigned(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature")


def _has_unsigned_thinking(message: Any) -> bool:
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(_unsigned(block) for block in content)


def _without_unsigned_thinking(message: Any) -> Any:
    if not _has_unsigned_thinking(message):
        return message
    return {**message, "content": [block for block in message["content"] if not _unsigned(block)]}
