"""Request rules the real APIs enforce, so an adapter that sends a malformed body fails against the fakes.

Each function returns ``(param, message)`` for the first broken rule, or None. Messages follow the real APIs'
wording closely enough for a reader to recognise them.
"""

from __future__ import annotations

from typing import Any

Problem = tuple[str, str]

_OPENAI_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ANTHROPIC_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
        "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_format",
    }
)  # fmt: skip
_ANTHROPIC_BLOCKS = frozenset(
    {
        "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking", "redacted_thinking",
        "server_tool_use", "web_search_tool_result", "container_upload",
    }
)  # fmt: skip


_ANTHROPIC_TOOL_FIELDS = frozenset(
    {
        "type",
        "name",
        "description",
        "input_schema",
        "cache_control",
        "strict",
        "input_examples",
        "eager_input_streaming",
    }
)
MIN_THINKING_BUDGET = 1024


# --- OpenAI ---------------------------------------------------------------------------------------------------
def openai_message_errors(body: dict[str, Any]) -> Problem | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages", "[] is too short - 'messages'"
    pending: set[str] = set()
    pending_at = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _OPENAI_ROLES:
            role = message.get("role") if isinstance(message, dict) else message
            return f"messages[{i}].role", f"Invalid value: '{role}'. Supported values are: {', '.join(_OPENAI_ROLES)}."
        role = message["role"]
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                return (
                    f"messages.[{i}].role",
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'.",
                )
            pending.discard(message["tool_call_id"])
            continue
        if pending:
            return f"messages.[{pending_at}].role", _unanswered_calls(pending)
        if role != "assistant" and "content" not in message:
            return f"messages[{i}].content", f"Missing required parameter: 'messages[{i}].content'."
        if role == "assistant" and message.get("tool_calls"):
            pending = {str(call.get("id")) for call in message["tool_calls"] if isinstance(call, dict)}
            pending_at = i
    if pending:
        return f"messages.[{pending_at}].role", _unanswered_calls(pending)
    return _openai_tool_errors(body.get("tools"))


def _unanswered_calls(ids: set[str]) -> str:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(ids))}"
    )


def _openai_tool_errors(tools: Any) -> Problem | None:
    if tools is None:
        return None
    if not isinstance(tools, list) or not tools:
        return "tools", "[] is too short - 'tools'"
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in ("function", "custom"):
            return f"tools[{i}].type", f"Missing required parameter: 'tools[{i}].type'."
        assert isinstance(tool, dict)
        if not isinstance(tool.get(kind), dict) or not tool[kind].get("name"):
            return f"tools[{i}].{kind}", f"Missing required parameter: 'tools[{i}].{kind}'."
    return None


# --- Anthropic ------------------------------------------------------------------------------------------------
def anthropic_request_errors(body: dict[str, Any]) -> str | None:
    for name in body:
        if name not in ANTHROPIC_FIELDS:
            return f"{name}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        return "max_tokens: Field required"
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Input should be a valid integer greater than or equal to 1"
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 1):
        return "temperature: Input should be less than or equal to 1"
    for problem in (
        _anthropic_system_error(body.get("system")),
        _anthropic_messages_error(body.get("messages")),
        _anthropic_tools_error(body.get("tools"), body.get("tool_choice")),
        _anthropic_thinking_error(body),
    ):
        if problem is not None:
            return problem
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        return "stop_sequences: Input should be a valid list of strings"
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        return "metadata: Extra inputs are not permitted"
    return None


def _anthropic_system_error(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        if all(isinstance(b.get("text"), str) and b["text"] for b in system):
            return None
        return "system: text content blocks must be non-empty"
    return "system: Input should be a valid string or a list of text blocks"


def _anthropic_messages_error(messages: Any) -> str | None:
    if messages is None:
        return "messages: Field required"
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    previous_role = ""
    previous_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            return (
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if role == previous_role:
            return (
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        last = i == len(messages) - 1
        problem, tool_uses = _anthropic_content_error(i, message.get("content"), role, previous_tool_uses, last)
        if problem is not None:
            return problem
        previous_role, previous_tool_uses = role, tool_uses
    return None


def tool_uses_without_results(index: int, ids: set[str]) -> str:
    return (
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{', '.join(sorted(ids))}. Each `tool_use` block must have a corresponding `tool_result` block in the "
        "next message."
    )


def _anthropic_content_error(
    i: int, content: Any, role: str, open_tool_uses: set[str], last: bool
) -> tuple[str | None, set[str]]:
    """A problem with message ``i``'s content, and the tool_use ids it opens."""
    empty = f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
    no_ids: set[str] = set()
    if isinstance(content, str) or (isinstance(content, list) and not content):
        if not content and not (last and role == "assistant"):
            return empty, no_ids
        if open_tool_uses:
            return tool_uses_without_results(i - 1, open_tool_uses), no_ids
        return None, no_ids
    if not isinstance(content, list):
        return f"messages.{i}.content: Input should be a valid string or list", no_ids
    opened: set[str] = set()
    answered: set[str] = set()
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"messages.{i}.content.{j}"
        if kind not in _ANTHROPIC_BLOCKS:
            return f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags", no_ids
        assert isinstance(block, dict)
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            return "messages: text content blocks must be non-empty", no_ids
        if kind in ("thinking", "redacted_thinking"):
            if role != "assistant":
                return f"{where}: {kind} blocks are only allowed in assistant messages", no_ids
            problem = _anthropic_thinking_block_error(where, block)
            if problem is not None:
                return problem, no_ids
        if kind == "tool_use":
            if role != "assistant":
                return f"{where}: tool_use blocks are only allowed in assistant messages", no_ids
            if not isinstance(block.get("input"), dict):
                return f"{where}.tool_use.input: Input should be a valid dictionary", no_ids
            opened.add(str(block.get("id")))
        if kind == "tool_result":
            if role != "user" or block.get("tool_use_id") not in open_tool_uses:
                return (
                    f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {block.get('tool_use_id')}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                ), no_ids
            answered.add(block["tool_use_id"])
    if open_tool_uses - answered:
        return tool_uses_without_results(i - 1, open_tool_uses - answered), no_ids
    return None, opened


def _anthropic_tools_error(tools: Any, tool_choice: Any) -> str | None:
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"tools.{i}: Input should be a valid dictionary"
            if tool.get("type") == "function" or "function" in tool:
                return f"tools.{i}: Input tag 'function' found using 'type' does not match any of the expected tags"
            if tool.get("type") in (None, "custom"):
                if not isinstance(tool.get("name"), str) or not tool["name"]:
                    return f"tools.{i}.custom.name: Field required"
                if not isinstance(tool.get("input_schema"), dict):
                    return f"tools.{i}.custom.input_schema: Field required"
                for key in sorted(set(tool) - _ANTHROPIC_TOOL_FIELDS):
                    return f"tools.{i}.custom.{key}: Extra inputs are not permitted"
                if "strict" in tool and not isinstance(tool["strict"], bool):
                    return f"tools.{i}.custom.strict: Input should be a valid boolean"
    if tool_choice is not None:
        if not isinstance(tool_choice, dict) or tool_choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice: Input should be a valid dictionary with type 'auto', 'any', 'tool' or 'none'"
        if tool_choice["type"] == "tool" and not tool_choice.get("name"):
            return "tool_choice.tool.name: Field required"
    return None


def _anthropic_thinking_error(body: dict[str, Any]) -> str | None:
    """Extended thinking's own rules: a budget of at least 1024 below ``max_tokens``; no temperature but 1, no
    top_p below 0.95 and no forced tool use while it is on."""
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        return "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled'"
    if thinking["type"] == "disabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        return "thinking.enabled.budget_tokens: Field required"
    if budget < MIN_THINKING_BUDGET:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if budget >= body["max_tokens"]:
        return "`max_tokens` must be greater than `thinking.budget_tokens`."
    if body.get("temperature") not in (None, 1, 1.0):
        return "`temperature` may only be set to 1 when thinking is enabled."
    top_p = body.get("top_p")
    if top_p is not None and not 0.95 <= top_p <= 1:
        return "`top_p` must be between 0.95 and 1 when thinking is enabled."
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def _anthropic_thinking_block_error(where: str, block: dict[str, Any]) -> str | None:
    if block["type"] == "thinking":
        if not isinstance(block.get("thinking"), str):
            return f"{where}.thinking.thinking: Field required"
        if not isinstance(block.get("signature"), str) or not block["signature"]:
            return f"{where}.thinking.signature: Field required"
    if block["type"] == "redacted_thinking" and not isinstance(block.get("data"), str):
        return f"{where}.redacted_thinking.data: Field required"
    return None


# --- Ollama ---------------------------------------------------------------------------------------------------
def ollama_request_errors(body: dict[str, Any]) -> str | None:
    """Ollama decodes into Go structs, so type mismatches come back as Go's unmarshal errors."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        return "json: cannot unmarshal object into Go struct field ChatRequest.messages of type []api.Message"
    for message in messages or []:
        if not isinstance(message, dict):
            return "json: cannot unmarshal value into Go struct field ChatRequest.messages of type api.Message"
        thinking = message.get("thinking")
        if thinking is not None and not isinstance(thinking, str):
            return "json: cannot unmarshal value into Go struct field Message.messages.thinking of type string"
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            kind = "array" if isinstance(content, list) else "object"
            return f"json: cannot unmarshal {kind} into Go struct field Message.messages.content of type string"
        for call in message.get("tool_calls") or []:
            arguments = call.get("function", {}).get("arguments") if isinstance(call, dict) else None
            if not isinstance(arguments, dict):
                return (
                    "json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function"
                    ".arguments of type api.ToolCallFunctionArguments"
                )
    think = body.get("think")
    if think is not None and not isinstance(think, bool) and think not in ("low", "medium", "high"):
        return "json: cannot unmarshal value into Go struct field ChatRequest.think of type api.ThinkValue"
    if body.get("logprobs") is not None and not isinstance(body["logprobs"], bool):
        return "json: cannot unmarshal value into Go struct field ChatRequest.logprobs of type bool"
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20):
        return "top_logprobs must be between 0 and 20"
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        return "json: cannot unmarshal value into Go struct field ChatRequest.options of type map[string]interface {}"
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(_ollama_tool_ok(t) for t in tools)):
        return "json: cannot unmarshal value into Go struct field ChatRequest.tools of type api.Tools"
    return None


def _ollama_tool_ok(tool: Any) -> bool:
    return isinstance(tool, dict) and isinstance(tool.get("function"), dict) and bool(tool["function"].get("name"))
