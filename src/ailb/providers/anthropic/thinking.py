"""Pure translation of reasoning between OpenAI's chat shape and Claude's extended thinking.

Request side: ``reasoning_effort`` becomes ``thinking: {"type": "enabled", "budget_tokens": B}``. ``none`` and
``minimal`` leave thinking off; ``low``, ``medium``, ``high``, ``xhigh`` and ``max`` ask for budgets of 1024,
2048, 4096, 8192 and 16384 tokens. As with OpenAI's ``max_completion_tokens``, the output cap includes the
reasoning: a request without one gets ``max_tokens`` = the deployment's ``default_max_tokens`` + B (room for
both); a request with one keeps it and gets B lowered below it (Claude needs at least 1024, below max_tokens).
While thinking, Claude takes no sampling changes, so ``temperature`` and ``top_p`` are not sent.

Round trips: an assistant message's ``thinking_blocks`` (as the answers carry them, with their signatures) go
back as Claude's ``thinking`` / ``redacted_thinking`` blocks at the head of that turn. ``reasoning_content``
alone (unsigned, e.g. from another provider) cannot be verified by Claude and is not sent back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ailb.errors import InvalidRequestError

MIN_BUDGET = 1024
BUDGETS = {"low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
NO_THINKING = frozenset({"none", "minimal"})


def thinking_and_max_tokens(
    effort: Any, max_tokens: int | None, default_max_tokens: int
) -> tuple[dict[str, Any] | None, int]:
    """The ``thinking`` parameter for ``reasoning_effort`` (None: thinking off) and the ``max_tokens`` to send."""
    if effort is None or effort in NO_THINKING:
        return None, max_tokens or default_max_tokens
    budget = BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        choices = ", ".join([*sorted(NO_THINKING), *BUDGETS])
        raise InvalidRequestError(f"reasoning_effort must be one of {choices}.", param="reasoning_effort")
    if max_tokens is None:
        return {"type": "enabled", "budget_tokens": budget}, default_max_tokens + budget
    if max_tokens <= MIN_BUDGET:
        raise InvalidRequestError(
            f"With reasoning_effort, this deployment (Claude) needs max_completion_tokens above {MIN_BUDGET}: "
            f"its reasoning budget is at least {MIN_BUDGET} tokens within that cap.",
            param="max_completion_tokens",
        )
    return {"type": "enabled", "budget_tokens": min(budget, max_tokens - 1)}, max_tokens


def thinking_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Claude's blocks for an assistant message's ``thinking_blocks``, signatures intact."""
    blocks = message.get("thinking_blocks")
    if not isinstance(blocks, list):
        return []
    out: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append({"type": "redacted_thinking", "data": block["data"]})
        elif block.get("type") == "thinking" and block.get("signature"):
            out.append(
                {"type": "thinking", "thinking": str(block.get("thinking") or ""), "signature": block["signature"]}
            )
    return out


def block_for_client(block: Mapping[str, Any]) -> dict[str, Any]:
    """A ``thinking`` or ``redacted_thinking`` block as the answer's ``thinking_blocks`` carries it."""
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": str(block.get("data") or "")}
    return {
        "type": "thinking",
        "thinking": str(block.get("thinking") or ""),
        "signature": str(block.get("signature") or ""),
    }
