"""Per-key governance on top of one ``LimitStore``: model scopes, rpm, tpm and spend budgets.

The HTTP edge asks ``meter(key, model)`` once per request: a model outside the key's ``models`` is refused
like an unknown one (no enumeration); a key without limits gets ``None`` and costs nothing more. Otherwise the
returned ``Meter`` (``governance/meter.py``) admits and settles that request. Refusals become OpenAI-shaped
429s, counted in ``ailb_key_rejections_total`` and logged under the key's name, never the key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from ailb.errors import AILBError, ModelNotFoundError, QuotaExceededError, RateLimitedError
from ailb.governance.meter import Meter, ledger_name, rpm_bucket
from ailb.governance.periods import DEFAULT_PERIOD
from ailb.governance.usage import KeyUsage, UsageLimits
from ailb.state import Draw, LimitStore, Refusal, Settlement
from ailb.tenancy import ClientKey

log = logging.getLogger("ailb.governance")
TOO_LARGE_RETRY_AFTER = 60.0
MAX_REMEMBERED_EXHAUSTIONS = 4096  # (key, period) pairs whose exhaustion was logged; one line each


class KeyMetrics(Protocol):
    """What governance reports (implemented by ``observability.Metrics``)."""

    def key_spent(self, key: str, usd: float) -> None: ...

    def key_rejected(self, key: str, reason: str) -> None: ...


class Governor:
    def __init__(self, store: LimitStore, metrics: KeyMetrics, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._metrics = metrics
        self._wall_clock = wall_clock
        self._settling: set[asyncio.Task[None]] = set()
        self._exhausted: set[str] = set()  # ledgers whose exhaustion was logged

    def meter(self, key: ClientKey, model: str) -> Meter | None:
        """Check the key may use ``model``; a ``Meter`` for the request when the key has limits."""
        if key.models is not None and model not in key.models:
            self._metrics.key_rejected(key.name, "model")
            log.debug("key %s may not use model %r", key.name, model)
            raise ModelNotFoundError(model)
        if key.limits is None:
            return None
        return Meter(self, key, key.limits, self._wall_clock())

    # --- used by meters -------------------------------------------------------------------------------------
    def refused(self, meter: Meter, refusal: Refusal) -> AILBError:
        name, limits = meter.key.name, meter.limits
        if refusal.key == meter.ledger:
            return self._over_budget(meter)
        if refusal.key == rpm_bucket(name):
            reason, what = "rpm", f"{limits.rpm} requests per minute"
        else:
            reason, what = "tpm", f"{limits.tpm} tokens per minute"
        self._metrics.key_rejected(name, reason)
        log.debug("key %s refused: over %s", name, what)
        if math.isinf(refusal.retry_after):
            return RateLimitedError(
                f"This request's prompt (about {meter.prompt_tokens} tokens) is larger than this API key's limit "
                f"of {what}; it cannot be sent with this key.",
                retry_after=TOO_LARGE_RETRY_AFTER,
                should_retry=False,
            )
        wait = max(1, math.ceil(refusal.retry_after))
        return RateLimitedError(
            f"Rate limit reached for this API key ({name}): {what}. Try again in {wait} s.",
            retry_after=refusal.retry_after,
        )

    def _over_budget(self, meter: Meter) -> AILBError:
        name, limits = meter.key.name, meter.limits
        self._metrics.key_rejected(name, "budget")
        resets = datetime.fromtimestamp(meter.period_end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if meter.ledger not in self._exhausted:
            if len(self._exhausted) >= MAX_REMEMBERED_EXHAUSTIONS:
                self._exhausted.clear()
            self._exhausted.add(meter.ledger)
            log.info("key %s has used its budget for the period; refusing requests until %s", name, resets)
        return QuotaExceededError(
            f"Budget exceeded for this API key ({name}): this request may cost up to ${meter.reserved_usd:.6f}, "
            f"more than what is left of its ${limits.max_budget_usd:g} budget for the current "
            f"{limits.period.text} period. The budget resets at {resets}.",
            retry_after=max(1.0, meter.period_end - self._wall_clock()),
        )

    def submit(self, draws: Sequence[Draw], settlement: Settlement, name: str, spent_usd: float) -> None:
        """Settle in the background: the answer never waits for the store."""
        self._metrics.key_spent(name, spent_usd)
        try:
            task = asyncio.get_running_loop().create_task(self.store.settle(draws, settlement))
        except RuntimeError:  # no event loop any more (interpreter shutdown): nothing left to settle into
            return
        self._settling.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("settling a metered request failed: %r", task.exception())

    async def drain(self) -> None:
        """Wait for settlements still running (before the store closes)."""
        while self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)

    # --- GET /v1/usage --------------------------------------------------------------------------------------
    async def usage(self, key: ClientKey) -> KeyUsage:
        limits = key.limits
        period = limits.period if limits is not None else DEFAULT_PERIOD
        start, end = period.bounds(self._wall_clock())
        usage = KeyUsage(
            name=key.name,
            metered=limits is not None,
            period=period.text,
            period_start=int(start),
            period_end=int(end),
            limits=UsageLimits(
                rpm=limits.rpm if limits else None,
                tpm=limits.tpm if limits else None,
                max_budget_usd=limits.max_budget_usd if limits else None,
                budget_period=period.text,
                models=sorted(key.models) if key.models is not None else None,
            ),
        )
        if limits is None:
            return usage
        ledger = await self.store.ledger(ledger_name(key.name, period.text, start))
        budget = limits.max_budget_usd
        usage.spend_usd = round(ledger.spent_usd, 9)
        usage.budget_usd = budget
        usage.reserved_usd = round(ledger.reserved_usd, 9)
        usage.remaining_usd = None if budget is None else round(max(0.0, budget - ledger.spent_usd), 9)
        usage.requests = ledger.requests
        usage.prompt_tokens = ledger.prompt_tokens
        usage.completion_tokens = ledger.completion_tokens
        usage.total_tokens = ledger.prompt_tokens + ledger.completion_tokens
        return usage
