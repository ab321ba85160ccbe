"""The OpenAI chat completions API as AILB serves it: the request (validation and OpenAPI) and the answer (OpenAPI).

The chat schema is also the canonical form every other surface translates into (``ailb.contract``): a request is
parsed once (orjson) into a plain dict and checked against ``ChatCompletionRequest``; the checked dict itself is
what flows on to the providers, so an OpenAI-compatible upstream gets it back with minimal re-encoding. The
answer structs only document the API: answers are built as plain dicts on the hot path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ailb.ingress.validation import Schema, SessionIdField, Unset


# --- content parts -----------------------------------------------------------------------------------------
class TextPart(Schema, tag_field="type", tag="text"):
    text: str


class ImageURL(Schema):
    url: str
    detail: Literal["auto", "low", "high"] | msgspec.UnsetType = Unset


class ImagePart(Schema, tag_field="type", tag="image_url"):
    image_url: ImageURL


class InputAudio(Schema):
    data: str
    format: str


class AudioPart(Schema, tag_field="type", tag="input_audio"):
    input_audio: InputAudio


class FilePart(Schema, tag_field="type", tag="file"):
    file: dict[str, Any]


class RefusalPart(Schema, tag_field="type", tag="refusal"):
    refusal: str


UserContentPart = TextPart | ImagePart | AudioPart | FilePart
AssistantContentPart = TextPart | RefusalPart


# --- messages -----------------------------------------------------------------------------------------------
class FunctionCall(Schema):
    name: str
    arguments: str


class CustomCall(Schema):
    name: str
    input: str


class ToolCall(Schema):
    """A function tool call (``function``) or, with ``type: "custom"``, a custom tool call (``custom``)."""

    id: str
    type: Literal["function", "custom"] = "function"
    function: FunctionCall | msgspec.UnsetType = Unset
    custom: CustomCall | msgspec.UnsetType = Unset

    def __post_init__(self) -> None:
        _require_variant(self.type, function=self.function, custom=self.custom)


class ThinkingBlock(Schema):
    """A reasoning block as Anthropic signs it, carried on assistant messages for round trips:
    ``{"type": "thinking", "thinking", "signature"}`` or ``{"type": "redacted_thinking", "data"}``."""

    type: Literal["thinking", "redacted_thinking"]
    thinking: str | msgspec.UnsetType = Unset
    signature: str | msgspec.UnsetType = Unset
    data: str | msgspec.UnsetType = Unset


class SystemMessage(Schema, tag_field="role", tag="system"):
    content: str | list[TextPart]
    name: str | msgspec.UnsetType = Unset


class DeveloperMessage(Schema, tag_field="role", tag="developer"):
    content: str | list[TextPart]
    name: str | msgspec.UnsetType = Unset


class UserMessage(Schema, tag_field="role", tag="user"):
    content: str | list[UserContentPart]
    name: str | msgspec.UnsetType = Unset


class AssistantMessage(Schema, tag_field="role", tag="assistant"):
    content: str | list[AssistantContentPart] | None = None
    name: str | msgspec.UnsetType = Unset
    tool_calls: list[ToolCall] | msgspec.UnsetType = Unset
    refusal: str | None = None
    function_call: FunctionCall | None = None
    # Reasoning, as every provider's answers expose it (see the README): the text, and Anthropic's signed blocks.
    reasoning_content: str | None = None
    thinking_blocks: list[ThinkingBlock] | msgspec.UnsetType = Unset


class ToolMessage(Schema, tag_field="role", tag="tool"):
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(Schema, tag_field="role", tag="function"):
    content: str | None
    name: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage


# --- tools --------------------------------------------------------------------------------------------------
ToolName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class FunctionDefinition(Schema):
    name: ToolName
    description: str | msgspec.UnsetType = Unset
    parameters: dict[str, Any] | msgspec.UnsetType = Unset
    strict: bool | None = None


class TextFormat(Schema, tag_field="type", tag="text"):
    pass


class Grammar(Schema):
    definition: str
    syntax: Literal["lark", "regex"]


class GrammarFormat(Schema, tag_field="type", tag="grammar"):
    grammar: Grammar


class CustomToolDefinition(Schema):
    name: ToolName
    description: str | msgspec.UnsetType = Unset
    format: TextFormat | GrammarFormat | msgspec.UnsetType = Unset


class Tool(Schema):
    """A function tool (``function``) or a custom tool taking free-form text (``type: "custom"``)."""

    type: Literal["function", "custom"] = "function"
    function: FunctionDefinition | msgspec.UnsetType = Unset
    custom: CustomToolDefinition | msgspec.UnsetType = Unset

    def __post_init__(self) -> None:
        _require_variant(self.type, function=self.function, custom=self.custom)


class NamedFunction(Schema):
    name: str


class AllowedTools(Schema):
    mode: Literal["auto", "required"]
    tools: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)]


class NamedToolChoice(Schema):
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


class StreamOptions(Schema):
    include_usage: bool = False


class ChatCompletionRequest(Schema):
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
    session_id: SessionIdField | None = None
    rag_collection: str | Annotated[list[str], msgspec.Meta(min_length=1, max_length=8)] | None = None
    rag_top_k: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None
    routing_strategy: str | None = None


REQUEST_FIELDS = frozenset(ChatCompletionRequest.__struct_fields__)


# --- responses (documented in the OpenAPI schema; built as plain dicts on the hot path) ----------------------
class ResponseMessage(Schema):
    role: Literal["assistant"]
    content: str | None = None
    tool_calls: list[ToolCall] | msgspec.UnsetType = Unset
    refusal: str | None = None
    function_call: FunctionCall | msgspec.UnsetType = Unset
    reasoning_content: str | msgspec.UnsetType = Unset
    thinking_blocks: list[ThinkingBlock] | msgspec.UnsetType = Unset


class Choice(Schema):
    index: int
    message: ResponseMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"] | None
    logprobs: dict[str, Any] | None = None


class CompletionUsage(Schema):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int] | msgspec.UnsetType = Unset  # {"cached_tokens": prompt-cache reads}


class ChatCompletion(Schema):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None

