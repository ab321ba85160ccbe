"""``POST /v1/messages/count_tokens``: the input tokens a Messages request would take.

Where the model has an Anthropic deployment whose circuit is closed, Anthropic counts (its endpoint spends no
tokens); a client error there (a malformed request) is the client's answer, any other failure falls back to the
estimate. Otherwise — and for models served only by other providers — AILB's own token counter estimates:
the conversation's text and the tool definitions, with the same tokenizer and per-message overheads as its
routing and budgets use. ``source`` says which it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ailb.contract import ChatCall
from ailb.errors import UpstreamError
from ailb.ingress.messages.egress import MessagesPassthrough
from ailb.ingress.messages.request import system_text
from ailb.ingress.messages.schema import COUNT_FIELDS, CountTokensRequest
from ailb.ingress.validation import AILB_FIELDS, convert, refuse_client_config
from ailb.routing.retry import is_client_error

if TYPE_CHECKING:
    from ailb.routing.router import Router

log = logging.getLogger("ailb.ingress")
COUNT_TIMEOUT = 10.0
# Messages fields the count_tokens endpoint does not take.
NOT_COUNTED = frozenset({"max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata"})


def parse(data: dict[str, Any]) -> CountTokensRequest:
    refuse_client_config(data.keys() - COUNT_FIELDS)
    return convert(data, CountTokensRequest)


async def count_tokens(router: Router, data: Mapping[str, Any], request: CountTokensRequest) -> tuple[int, str]:
    """``(input_tokens, source)``; ``source`` is ``upstream`` (the provider counted) or ``estimate``."""
    router.resolve(request.model)
    payload = {key: value for key, value in data.items() if key not in AILB_FIELDS and key not in NOT_COUNTED}
    for target in router.catalog.targets(request.model):
        provider = target.deployment.provider
        if not isinstance(provider, MessagesPassthrough) or not target.deployment.circuit.up:
            continue
        try:
            async with asyncio.timeout(COUNT_TIMEOUT):
                count = await provider.count_tokens_native(orjson.dumps({**payload, "model": target.model}))
        except UpstreamError as exc:
            if is_client_error(exc):
                raise
            log.info("token count from %s failed, estimating instead: %s", target.deployment.name, exc.log_message)
            continue
        except TimeoutError:
            log.info("token count from %s timed out, estimating instead", target.deployment.name)
            continue
        return count, "upstream"
    return await estimate(router, request), "estimate"


async def estimate(router: Router, request: CountTokensRequest) -> int:
    messages = [{"role": "system", "content": text} for text in [system_text(request.system)] if text]
    for message in request.messages:
        content: Any = message.content
        if isinstance(content, list):  # images and documents count as the counter's fixed size per part
            content = [_as_part(block) for block in content]
        messages.append({"role": message.role, "content": content})
    call = ChatCall(body={"messages": messages}, model=request.model, stream=False, include_usage=False, tenant="")
    total = await router.count_prompt(call)
    if request.tools:
        total += router.tokens.count_text(orjson.dumps(request.tools).decode())
    return total


def _as_part(block: Mapping[str, Any]) -> dict[str, Any]:
    if block.get("type") in ("image", "document"):
        return {"type": str(block["type"])}
    return {"type": "text", "text": _block_text(block)}


def _block_text(block: Mapping[str, Any]) -> str:
    """What a block says, as text: its text, a tool call's input, a tool result's content."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "thinking":
        return str(block.get("thinking") or "")
    if kind == "tool_use":
        return str(block.get("name") or "") + orjson.dumps(block.get("input") or {}).decode()
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return "".join(_block_text(part) for part in content if isinstance(part, Mapping))
        return str(content or "")
    return ""
