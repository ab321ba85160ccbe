"""The legacy OpenAI completions API (``POST /v1/completions``): request (validation, OpenAPI) and answer (OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ailb.ingress.validation import Schema


class StreamOptions(Schema):
    include_usage: bool = False


class CompletionRequest(Schema):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    prompt: str | Annotated[list[Any], msgspec.Meta(min_length=1, max_length=128)]
    suffix: str | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    logprobs: Annotated[int, msgspec.Meta(ge=0, le=5)] | None = None
    echo: bool | None = None
    stop: str | Annotated[list[str], msgspec.Meta(max_length=4)] | None = None
    presence_penalty: Annotated[float, msgspec.Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, msgspec.Meta(ge=-2, le=2)] | None = None
    best_of: Annotated[int, msgspec.Meta(ge=1, le=20)] | None = None
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    user: str | None = None
    routing_strategy: str | None = None  # AILB's own (never forwarded)


COMPLETION_FIELDS = frozenset(CompletionRequest.__struct_fields__)


class CompletionChoice(Schema):
    text: str
    index: int
    logprobs: None
    finish_reason: Literal["stop", "length", "content_filter"] | None


class CompletionUsage(Schema):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TextCompletion(Schema):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
