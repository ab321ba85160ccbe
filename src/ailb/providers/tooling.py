"""What an OpenAI chat request offers in tools, for providers that only know function tools (Anthropic, Ollama).

Pure: reads ``tools``/``tool_choice``/``parallel_tool_calls`` and the legacy ``functions``/``function_call`` into
one ``ToolRequest``, and refuses (``InvalidRequestError`` naming the field) what such a provider cannot express,
so the router can try a deployment that can:

- custom tools (``type: "custom"``, free-form text input), a named custom ``tool_choice`` and custom tool calls;
- ``tools`` and ``functions`` together.

``tool_choice: {"type": "allowed_tools"}`` is expressed by offering only the allowed tools, with ``auto`` or
``required`` from its ``mode``. Legacy ``functions`` become function tools, ``function_call`` the tool choice,
and the answer's first tool call becomes its ``function_call`` (the legacy format holds one call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ailb.errors import InvalidRequestError

Choice = Literal["auto", "none", "required", "function"]
_CHOICES: dict[str, Choice] = {"auto": "auto", "none": "none", "required": "required"}


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """``functions``: the function definitions offered (``name``, ``description``, ``parameters``, ``strict``);
    ``choice``: None when the client gave none; ``name``: the function forced by ``choice == "function"``;
    ``parallel``: ``parallel_tool_calls`` (False for legacy functions)."""

    functions: tuple[Mapping[str, Any], ...]
    choice: Choice | None = None
    name: str | None = None
    parallel: bool | None = None
    legacy: bool = False


def legacy_functions(body: Mapping[str, Any]) -> bool:
    """Whether the client asked in the legacy ``functions`` format (and so expects ``function_call`` back)."""
    return bool(body.get("functions")) and not body.get("tools")


def tool_request(body: Mapping[str, Any]) -> ToolRequest | None:
    """The tools ``body`` offers, or None when it offers none."""
    tools, functions = body.get("tools"), body.get("functions")
    if tools and functions:
        raise InvalidRequestError("Send tools or the legacy functions, not both.", param="functions")
    if functions:
        return _legacy(functions, body.get("function_call"))
    if not tools:
        return None
    offered = tuple(_function_of(tool, index) for index, tool in enumerate(tools))
    parallel = body.get("parallel_tool_calls")
    parallel = parallel if isinstance(parallel, bool) else None
    return _with_choice(offered, body.get("tool_choice"), parallel)


def reject_custom_tool_calls(message: Mapping[str, Any]) -> None:
    """An assistant message in the history that called a custom tool cannot be replayed to this provider."""
    for call in message.get("tool_calls") or ():
        if isinstance(call, Mapping) and call.get("type") == "custom":
            raise InvalidRequestError(
                "This deployment cannot take custom tool calls (type 'custom') in the conversation.", param="messages"
            )


def _function_of(tool: Any, index: int) -> Mapping[str, Any]:
    kind = tool.get("type", "function") if isinstance(tool, Mapping) else None
    if kind == "custom":
        raise InvalidRequestError(
            f"This deployment cannot offer custom tools (tools[{index}] has type 'custom'); use function tools.",
            param=f"tools[{index}]",
        )
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(function, Mapping):
        raise InvalidRequestError(f"tools[{index}] must be a function tool.", param=f"tools[{index}]")
    return function


def _with_choice(offered: tuple[Mapping[str, Any], ...], choice: Any, parallel: bool | None) -> ToolRequest:
    if choice is None or isinstance(choice, str):
        if choice is not None and choice not in _CHOICES:
            raise InvalidRequestError("tool_choice must be none, auto or required.", param="tool_choice")
        return ToolRequest(offered, _CHOICES.get(choice) if choice else None, parallel=parallel)
    kind = choice.get("type", "function") if isinstance(choice, Mapping) else None
    if kind == "function" and isinstance(choice.get("function"), Mapping):
        return ToolRequest(offered, "function", str(choice["function"].get("name") or ""), parallel)
    if kind == "allowed_tools" and isinstance(choice.get("allowed_tools"), Mapping):
        return _allowed(offered, choice["allowed_tools"], parallel)
    if kind == "custom":
        raise InvalidRequestError("This deployment cannot force a custom tool.", param="tool_choice")
    raise InvalidRequestError("tool_choice is not a tool choice this deployment understands.", param="tool_choice")


def _allowed(offered: tuple[Mapping[str, Any], ...], allowed: Mapping[str, Any], parallel: bool | None) -> ToolRequest:
    names: list[str] = []
    for entry in allowed.get("tools") or ():
        if not isinstance(entry, Mapping) or entry.get("type", "function") != "function":
            raise InvalidRequestError(
                "This deployment can only allow function tools in tool_choice.allowed_tools.", param="tool_choice"
            )
        function = entry.get("function")  # {"type": "function", "function": {"name"}}, or Responses' {"name"}
        names.append(str((function if isinstance(function, Mapping) else entry).get("name") or ""))
    by_name = {str(function.get("name")): function for function in offered}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise InvalidRequestError(
            f"tool_choice.allowed_tools names '{missing[0]}', which is not one of the tools.", param="tool_choice"
        )
    mode: Choice = "required" if allowed.get("mode") == "required" else "auto"
    return ToolRequest(tuple(by_name[name] for name in dict.fromkeys(names)), mode, parallel=parallel)


def _legacy(functions: Any, function_call: Any) -> ToolRequest:
    offered = tuple(function for function in functions if isinstance(function, Mapping))
    if function_call is None or function_call in ("auto", "none"):
        choice: Choice | None = _CHOICES.get(function_call) if function_call else None
        return ToolRequest(offered, choice, parallel=False, legacy=True)
    if isinstance(function_call, Mapping) and function_call.get("name"):
        return ToolRequest(offered, "function", str(function_call["name"]), parallel=False, legacy=True)
    raise InvalidRequestError('function_call must be none, auto or {"name": ...}.', param="function_call")
