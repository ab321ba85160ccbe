"""The OpenAI Responses API as AILB serves it: the request (validation and OpenAPI) and the answer (OpenAPI).

Input items are checked one by one in ``request`` (a message may come without ``type``, so they are no tagged
union); everything else here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ailb.ingress.chat.schema import ToolName
from ailb.ingress.validation import AilbFields, Schema, Unset

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


# --- input items ----------------------------------------------------------------------------------------------
class InputText(Schema, tag_field="type", tag="input_text"):
    text: str


class InputImage(Schema, tag_field="type", tag="input_image"):
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(Schema, tag_field="type", tag="input_file"):
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(Schema, tag_field="type", tag="output_text"):
    text: str


class RefusalContent(Schema, tag_field="type", tag="refusal"):
    refusal: str


InputContent = InputText | InputImage | InputFile | OutputText | RefusalContent


class MessageItem(Schema):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputContent]
    type: Literal["message"] = "message"


class FunctionCallItem(Schema):
    call_id: Annotated[str, msgspec.Meta(min_length=1)]
    name: ToolName
    arguments: str
    type: Literal["function_call"] = "function_call"


class FunctionCallOutputItem(Schema):
    call_id: Annotated[str, msgspec.Meta(min_length=1)]
    output: str | list[InputContent]
    type: Literal["function_call_output"] = "function_call_output"


class ReasoningText(Schema):
    text: str
    type: str = "reasoning_text"


class ReasoningItem(Schema):
    summary: list[ReasoningText] = msgspec.field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    type: Literal["reasoning"] = "reasoning"


# --- tools and options ----------------------------------------------------------------------------------------
class FunctionTool(Schema):
    name: ToolName
    type: Literal["function"] = "function"
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedToolChoice(Schema):
    type: Literal["function", "allowed_tools"]
    name: str | msgspec.UnsetType = Unset
    mode: Literal["auto", "required"] | msgspec.UnsetType = Unset
    tools: list[dict[str, Any]] | msgspec.UnsetType = Unset


class TextFormat(Schema):
    type: Literal["text", "json_object", "json_schema"]
    name: str | msgspec.UnsetType = Unset
    schema: dict[str, Any] | msgspec.UnsetType = Unset
    description: str | msgspec.UnsetType = Unset
    strict: bool | None = None


class TextOptions(Schema):
    format: TextFormat | None = None
    verbosity: str | None = None


class ReasoningOptions(Schema):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesRequest(AilbFields, kw_only=True):
    """``POST /v1/responses``, plus AILB's own fields (never forwarded upstream)."""

    model: Annotated[str, msgspec.Meta(min_length=1)]
    input: str | Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextOptions | None = None
    max_output_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    metadata: Annotated[dict[str, str], msgspec.Meta(max_length=16)] | None = None
    reasoning: ReasoningOptions | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    store: bool | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    max_tool_calls: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # Refused unless empty: AILB neither stores responses nor runs them in the background.
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    prompt: dict[str, Any] | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None


RESPONSES_FIELDS = frozenset(ResponsesRequest.__struct_fields__)


# --- the answer (documented in the OpenAPI description; built as plain dicts) -------------------------------------
class ResponseUsage(Schema):
    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int


class ResponseObject(Schema):
    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "in_progress", "failed"]
    model: str
    output: list[dict[str, Any]]
    parallel_tool_calls: bool
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    usage: ResponseUsage | None = None
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    instructions: str | None = None
    metadata: dict[str, str] | None = None
    store: bool = False
