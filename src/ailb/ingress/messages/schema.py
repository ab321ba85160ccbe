"""The Anthropic Messages API as AILB serves it: requests (validation and OpenAPI) and answers (OpenAPI).

Content blocks and tools are kept as objects here: an Anthropic deployment receives them exactly as written
(new block and tool types included), and ``request`` checks each one it translates for other providers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ailb.ingress.validation import AilbFields, Schema

Block = dict[str, Any]


class MessageParam(Schema):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Metadata(Schema):
    user_id: str | None = None


class ToolChoice(Schema):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(Schema):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None


class TokenCountFields(AilbFields, kw_only=True):
    """What a prompt is made of: shared by ``/v1/messages`` and ``/v1/messages/count_tokens``."""

    model: Annotated[str, msgspec.Meta(min_length=1)]
    messages: Annotated[list[MessageParam], msgspec.Meta(min_length=1)]
    system: str | list[Block] | None = None
    tools: list[Block] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None


class MessagesRequest(TokenCountFields, kw_only=True):
    """``POST /v1/messages``, plus AILB's own fields (never forwarded upstream). Other fields Anthropic knows
    (``service_tier``, ``container``, ``mcp_servers``, ``context_management`` …) pass to Anthropic deployments."""

    max_tokens: Annotated[int, msgspec.Meta(ge=1)]
    metadata: Metadata | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None


class CountTokensRequest(TokenCountFields, kw_only=True):
    """``POST /v1/messages/count_tokens``."""


MESSAGES_FIELDS = frozenset(MessagesRequest.__struct_fields__)
COUNT_FIELDS = frozenset(CountTokensRequest.__struct_fields__)
# Fields for Anthropic's own servers: passed to Anthropic deployments, translated for none of the others.
ANTHROPIC_ONLY = frozenset({"top_k", "container", "mcp_servers", "context_management", "output_format"})
HINTS = frozenset({"service_tier"})  # Anthropic's alone; other providers have no use for it


# --- answers (documented in the OpenAPI description; built as plain dicts) ----------------------------------------
class Usage(Schema):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Message(Schema):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[Block]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage


class TokenCount(Schema):
    input_tokens: int


class AnthropicErrorDetail(Schema):
    type: str
    message: str


class AnthropicError(Schema):
    type: Literal["error"]
    error: AnthropicErrorDetail
