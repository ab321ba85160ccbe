"""Canonical chat completions (one per prompt) as one legacy ``text_completion`` (pure)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from ailb.contract import Completion, Usage
from ailb.ingress import canonical
from ailb.ingress.completions.request import CompletionSpec


def completion_id() -> str:
    return "cmpl-" + uuid.uuid4().hex


def choice(text: str, index: int, finish_reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def legacy_finish(reason: Any) -> str | None:
    """Chat's finish reasons in the legacy vocabulary (no tools here: a tool call would only be ``stop``)."""
    if reason is None:
        return None
    return reason if reason in ("stop", "length", "content_filter") else "stop"


def text_completion(completions: Sequence[Completion], spec: CompletionSpec) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    usage = Usage()
    for number, completion in enumerate(completions):
        usage = usage + completion.usage
        prefix = spec.prompts[number] if spec.echo else ""
        for item in canonical.choices(completion.body):
            content = canonical.text(canonical.mapping(item.get("message")).get("content"))
            index = number * spec.n + int(item.get("index") or 0)
            found.append(choice(prefix + content, index, legacy_finish(item.get("finish_reason"))))
    found.sort(key=lambda item: int(item["index"]))
    return {
        "id": completion_id(),
        "object": "text_completion",
        "created": int(time.time()),
        "model": spec.model,
        "choices": found,
        "usage": _usage(usage),
    }


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
