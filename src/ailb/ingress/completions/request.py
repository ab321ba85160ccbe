"""A legacy completions request as canonical chat calls, one per prompt (pure).

Every provider is called through chat completions: the prompt is the user message, and the answer's text is the
completion. ``max_tokens``, ``temperature``, ``top_p``, ``n``, ``stop``, ``presence_penalty``,
``frequency_penalty``, ``logit_bias``, ``seed`` and ``user`` keep their chat meaning. A list of prompts is one
call per prompt, its choices numbered prompt by prompt (prompt ``i``, choice ``j`` → ``index = i * n + j``).
``echo`` puts the prompt in front of each choice's text.

Refused with a 400 naming the field: ``suffix`` (no chat model fills in the middle), ``logprobs`` (legacy
log probabilities of prompt and text cannot be rebuilt from chat), ``best_of`` above 1 (nothing ranks the
candidates), prompts given as token ids, and AILB's memory and knowledge-base fields (chat, Responses and
Messages have them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ailb.contract import ChatCall
from ailb.errors import InvalidRequestError
from ailb.ingress.completions.schema import COMPLETION_FIELDS, CompletionRequest
from ailb.ingress.validation import AILB_FIELDS, convert, refuse_unknown, unsupported

PASSED = ("temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "seed", "user")


@dataclass(frozen=True, slots=True)
class CompletionSpec:
    model: str
    prompts: tuple[str, ...]
    n: int
    echo: bool
    include_usage: bool


def parse(data: dict[str, Any], tenant: str, headers: Mapping[str, str]) -> tuple[list[ChatCall], CompletionSpec]:
    for name in sorted(data.keys() & AILB_FIELDS - {"routing_strategy"}):
        raise unsupported(name, "memory and knowledge bases serve the chat, Responses and Messages APIs")
    refuse_unknown(data, COMPLETION_FIELDS, "completions API")
    request = convert(data, CompletionRequest)
    _refuse_unsupported(request)
    prompts = _prompts(request.prompt)
    options = {name: getattr(request, name) for name in PASSED if getattr(request, name) is not None}
    if request.max_tokens is not None:
        options["max_completion_tokens"] = request.max_tokens
    strategy = headers.get("x-ailb-strategy") or request.routing_strategy
    calls = [
        ChatCall(
            body={"model": request.model, "messages": [{"role": "user", "content": prompt}], **options},
            model=request.model,
            stream=bool(request.stream),
            include_usage=False,
            tenant=tenant,
            strategy=strategy,
        )
        for prompt in prompts
    ]
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    return calls, CompletionSpec(request.model, prompts, request.n or 1, bool(request.echo), include_usage)


def _refuse_unsupported(request: CompletionRequest) -> None:
    if request.suffix:
        raise unsupported("suffix", "insertion (a text between prompt and suffix) is not supported by chat models")
    if request.logprobs is not None:
        raise unsupported("logprobs", "legacy log probabilities cannot be rebuilt from chat completions")
    if request.best_of is not None and request.best_of > 1:
        raise unsupported("best_of", "AILB does not rank several candidates to return the best")


def _prompts(prompt: str | list[Any]) -> tuple[str, ...]:
    if isinstance(prompt, str):
        return (prompt,)
    if all(isinstance(item, str) for item in prompt):
        return tuple(prompt)
    raise InvalidRequestError(
        "Prompts given as token ids are not supported: send the prompt as a string or a list of strings.",
        param="prompt",
        code="unsupported_parameter",
    )
