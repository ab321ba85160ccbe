"""Watching what a test's code calls, while the real thing still runs."""

from __future__ import annotations

from typing import Any

import pytest


def record_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[Any]:
    """Replace ``owner.name`` (for the test) by a wrapper that notes each call's first argument in the list it
    returns, then calls the original."""
    calls: list[Any] = []
    original = getattr(owner, name)

    def recorded(first: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(first)
        return original(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)
    return calls
