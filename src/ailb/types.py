"""Canonical request, response and stream types.

The OpenAI chat schema is the canonical form. A request is parsed once (orjson) into a plain dict and
validated against the msgspec structs below; the validated dict is what flows down to the providers, so
an OpenAI-compatible upstream gets it back with minimal re-encoding. The structs double as the source of the
OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

Unset = msgspec.UNSET
SESSION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
COLLECTION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$"
AILB_BODY_FIELDS = ("session_id", "rag_collection", "rag_top_k", "routing_strategy")
# Credentials, endpoints and client-library settings (OpenAI, Azure, LiteLLM and cloud SDK options) are never part
# of the chat API. Sent in a body they would reach an upstream that may honour them (another gateway): refused.
CLIENT_CONFIG_FIELDS = frozenset({
    "api_key", "api_base", "base_url", "api_type", "api_version", "organization", "project", "headers",
    "extra_headers", "default_headers", "extra_query", "default_query", "extra_body", "timeout", "request_timeout",
    "max_retries", "http_client", "proxy", "proxies", "azure_endpoint", "azure_deployment", "azure_ad_token",
    "azure_ad_token_provider", "deployment_id", "engine", "custom_llm_provider", "api_token", "access_token",
    "authorization", "auth", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name",
    "aws_profile_name", "vertex_project", "vertex_location", "vertex_credentials",
})  # fmt: skip


class _Struct(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    pass


# --- content parts -----------------------------------------------------------------------------------------
class TextPart(_Struct, tag_field="type", tag="text"):
    text: str


class ImageURL(_Struct):
    url: str
    detail: Literal["auto", "low", "high"] | msgspec.UnsetType = Unset


class ImagePart(_Struct, tag_field="type", tag="image_url"):
    image_url: ImageURL


class InputAudio(_Struct):
    data: str
    format: str


class AudioPart(_Struct, tag_field="type", tag="input_audio"):
    input_audio: InputAudio


class FilePart(_Struct, tag_field="type", tag="file"):
    file: dict[str, Any]


class RefusalPart(_Struct, tag_field="type", tag="refusal"):
    refusal: str


UserContentPart = TextPart | ImagePart | AudioPart | FilePart
AssistantContentPart = TextPart | RefusalPart


# --- messages -----------------------------------------------------------------------------------------------
class FunctionCall(_Struct):
    name: str
    arguments: str


class CustomCall(_Struct):
    name: str
    input: str


class ToolCall(_Struct):
    """A function tool call (``function``) or, with ``type: "custom"``, a custom tool call (``custom``)."""

    id: str
    type: Literal["function", "custom"] = "function"
    function: FunctionCall | msgspec.UnsetType = Unset
    custom: CustomCall | msgspec.UnsetType = Unset

    def __post_init__(self) -> None:
        _require_variant(self.type, function=self.function, custom=self.custom)


class ThinkingBlock(_Struct):
    """A reasoning block as Anthropic signs it, carried on assistant messages for round trips:
    ``{"type": "thinking", "thinking", "signature"}`` or ``{"type": "redacted_thinking", "data"}``."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: str | msgspec.UnsetType = Unset
    signature: str | msgspec.UnsetType = Unset
    data: str | msgspec.UnsetType = Unset


class SystemMessage(_Struct, tag_field="role", tag="system"):
    content: str | list[TextPart]
    name: str | msgspec.UnsetType = Unset


class DeveloperMessage(_Struct, tag_field="role", tag="developer"):
    content: str | list[TextPart]
    name: str | msgspec.UnsetType = Unset


class UserMessage(_Struct, tag_field="role", tag="user"):
    content: str | list[UserContentPart]
    name: str | msgspec.UnsetType = Unset


class AssistantMessage(_Struct, tag_field="role", tag="assistant"):
    content: str | list[AssistantContentPart] | None = None
    name: str | msgspec.UnsetType = Unset
    tool_calls: list[ToolCall] | msgspec.UnsetType = Unset
    refusal: str | None = None
    function_call: FunctionCall | None = None
    # Reasoning, as every provider's answers expose it (see the README): the text, and Anthropic's signed blocks.
    reasoning_content: str | None = None
    thinking_blocks: list[ThinkingBlock] | msgspec.UnsetType = Unset


class ToolMessage(_Struct, tag_field="role", tag="tool"):
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(_Struct, tag_field="role", tag="function"):
    content: str | None
    name: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage


# --- tools --------------------------------------------------------------------------------------------------
ToolName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class FunctionDefinition(_Struct):
    name: ToolName
    description: str | msgspec.UnsetType = Unset
    parameters: dict[str, Any] | msgspec.UnsetType = Unset
    strict: bool | None = None


class TextFormat(_Struct, tag_field="type", tag="text"):
    pass


class Grammar(_Struct):
    definition: str
    syntax: Literal["lark", "regex"]


class GrammarFormat(_Struct, tag_field="type", tag="grammar"):
    grammar: Grammar


class CustomToolDefinition(_Struct):
    name: ToolName
    description: str | msgspec.UnsetType = Unset
    format: TextFormat | GrammarFormat | msgspec.UnsetType = Unset


class Tool(_Struct):
    """A function tool (``function``) or a custom tool taking free-form text (``type: "custom"``)."""

    type: Literal["function", "custom"] = "function"
    function: FunctionDefinition | msgspec.UnsetType = Unset
    custom: CustomToolDefinition | msgspec.UnsetType = Unset

    def __post_init__(self) -> None:
        _require_variant(self.type, function=self.function, custom=self.custom)


class NamedFunction(_Struct):
    name: str


class AllowedTools(_Struct):
    mode: Literal["auto", "required"]
    tools: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)]


class NamedToolChoice(_Struct):
    """``{"type": "function", "function": {"name"}}``, ``{"type": "custom", "custom": {"name"}}`` or
    ``{"type": "allowed_tools", "allowed_tools": {"mode", "tools"}}``."""

    type: Literal["function", "custom", "allowed_tools"] = "function"
    function: NamedFunction | msgspec.UnsetType = Unset
    custom: NamedFunction | msgspec.UnsetType = Unset
    allowed_tools: AllowedTools | msgspec.UnsetType = Unset

    def __post_init__(self) -> None:
        _require_variant(self.type, function=self.function, custom=self.custom, allowed_tools=self.allowed_tools)


def _require_variant(kind: str, **variants: Any) -> None:
    """The object of type ``kind`` must carry the field named ``kind``."""
    if variants.get(kind) is Unset:
        raise ValueError(f"Object of type `{kind}` is missing required field `{kind}`")


class StreamOptions(_Struct):
    include_usage: bool = False


class ChatCompletionRequest(_Struct):
    """The OpenAI chat completion request, plus AILB's own fields (never forwarded upstream)."""

    model: Annotated[str, msgspec.Meta(min_length=1)]
    messages: Annotated[list[Message], msgspec.Meta(min_length=1)]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stop: str | Annotated[list[str], msgspec.Meta(max_length=4)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, msgspec.Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, msgspec.Meta(ge=-2, le=2)] | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: Annotated[list[FunctionDefinition], msgspec.Meta(min_length=1, max_length=128)] | None = None
    function_call: Literal["none", "auto"] | NamedFunction | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    # AILB's own fields
    session_id: Annotated[str, msgspec.Meta(pattern=SESSION_ID_PATTERN)] | None = None
    rag_collection: str | Annotated[list[str], msgspec.Meta(min_length=1, max_length=8)] | None = None
    rag_top_k: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None
    routing_strategy: str | None = None


REQUEST_FIELDS = frozenset(ChatCompletionRequest.__struct_fields__)


# --- responses (documented in the OpenAPI schema; built as plain dicts on the hot path) ----------------------
class ResponseMessage(_Struct):
    role: Literal["assistant"]
    content: str | None = None
    tool_calls: list[ToolCall] | msgspec.UnsetType = Unset
    refusal: str | None = None
    function_call: FunctionCall | msgspec.UnsetType = Unset
    reasoning_content: str | msgspec.UnsetType = Unset
    thinking_blocks: list[ThinkingBlock] | msgspec.UnsetType = Unset


class Choice(_Struct):
    index: int
    message: ResponseMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"] | None
    logprobs: dict[str, Any] | None = None


class CompletionUsage(_Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int] | msgspec.UnsetType = Unset  # {"cached_tokens": prompt-cache reads}


class ChatCompletion(_Struct):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class ModelCard(_Struct):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(_Struct):
    object: Literal["list"]
    data: list[ModelCard]


class ErrorDetail(_Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(_Struct):
    error: ErrorDetail


# --- internal canonical forms ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Usage:
    """Token counts of one answer. ``prompt_tokens`` is the whole input, cached or not; of it,
    ``cache_read_tokens`` were read from and ``cache_write_tokens`` written to the upstream's prompt cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cache_read_tokens or self.cache_write_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cache_read_tokens}
        return out

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(slots=True)
class ChatCall:
    """One validated chat request as it flows through the gateway.

    ``body`` is the client's OpenAI request with AILB's fields removed; ``messages`` in it may be
    augmented by memory and RAG before routing. ``model`` is the public name the client asked for.
    """

    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    tenant: str
    session_id: str | None = None
    rag_collections: tuple[str, ...] = ()
    rag_top_k: int = 3
    strategy: str | None = None

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens") or self.body.get("max_tokens")
        return value if isinstance(value, int) else None


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) answer: ``body`` is an OpenAI ``chat.completion`` dict; ``raw``, when set, is the
    upstream's own encoding of that same body, passed to the client as it is."""

    body: dict[str, Any]
    usage: Usage
    text: str
    raw: bytes | None = None


@dataclass(slots=True)
class StreamChunk:
    """One piece of a streamed answer.

    ``frame`` is a complete SSE event (``data: {...}\\n\\n``) ready for the client, or empty when the chunk
    must not be shown (e.g. a usage-only chunk the client did not ask for). ``has_content`` marks the first
    chunk that commits the stream to this deployment (content, refusal or tool-call deltas).
    """

    frame: bytes
    text: str = ""
    has_content: bool = False
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass(slots=True, frozen=True)
class ModelInfo:
    id: str
    owned_by: str
    created: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def message_text(content: Any) -> str:
    """The plain text of an OpenAI message ``content`` (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
