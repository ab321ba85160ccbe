"""The ``GET /v1/usage`` answer: the calling key's period, spend, budget, requests, tokens and limits."""

from __future__ import annotations

from typing import Literal

import msgspec


class UsageLimits(msgspec.Struct):
    rpm: int | None
    tpm: int | None
    max_budget_usd: float | None
    budget_period: str
    models: list[str] | None


class KeyUsage(msgspec.Struct):
    """Counts are ``null`` for a key that is not metered (no ``rpm``, ``tpm`` or ``max_budget_usd``)."""

    name: str
    metered: bool
    period: str
    period_start: int  # Unix time (UTC) the current budget period began
    period_end: int  # Unix time it ends: when the budget resets
    limits: UsageLimits
    object: Literal["usage"] = "usage"
    spend_usd: float | None = None
    budget_usd: float | None = None
    reserved_usd: float | None = None  # held by requests in flight
    remaining_usd: float | None = None
    requests: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
