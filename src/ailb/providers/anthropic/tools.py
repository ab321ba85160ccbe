"""Pure translation of the tools an OpenAI chat request offers into Anthropic's ``tools`` and ``tool_choice``.

What the request offers is read once by ``providers.tooling`` (function tools, legacy ``functions``, allowed
tools; custom tools refused). Here: a function becomes ``{"name", "description", "input_schema", "strict"}``;
``auto``/``none``/``required``/a named function become ``auto``/``none``/``any``/``tool``;
``parallel_tool_calls: false`` (and the legacy format, which holds one call) becomes
``disable_parallel_tool_use``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ailb.errors import InvalidRequestError
from ailb.providers.tooling import ToolRequest

EMPTY_SCHEMA: Mapping[str, Any] = {"type": "object", "properties": {}}
_CHOICE_TYPES = {"auto": "auto", "none": "none", "required": "any", "function": "tool"}


def tool_fields(tools: ToolRequest | None, thinking: bool) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` for the request (nothing when no tools are offered). Claude cannot be
    forced to call a tool while it thinks, so that combination is refused."""
    if tools is None:
        return {}
    out: dict[str, Any] = {"tools": [_tool(function) for function in tools.functions]}
    choice = _tool_choice(tools)
    if choice is not None:
        if thinking and choice["type"] in ("any", "tool"):
            raise InvalidRequestError(
                "This deployment (Claude) cannot be forced to call a tool while it reasons: "
                "use tool_choice auto, or no reasoning_effort.",
                param="tool_choice",
            )
        out["tool_choice"] = choice
    return out


def _tool(function: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": function.get("name", "")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or EMPTY_SCHEMA
    if function.get("strict") is True:
        out["strict"] = True
    return out


def _tool_choice(tools: ToolRequest) -> dict[str, Any] | None:
    if tools.choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if tools.parallel is False else None
    else:
        out = {"type": _CHOICE_TYPES[tools.choice]}
        if tools.choice == "none":
            return out
        if tools.choice == "function":
            out["name"] = tools.name or ""
    if out is not None and tools.parallel is False:
        out["disable_parallel_tool_use"] = True
    return out
