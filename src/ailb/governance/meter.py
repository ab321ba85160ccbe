"""One metered request: admitted against its key's limits before it is sent, settled once when it ends.

Admission takes, in one atomic ``LimitStore.acquire``, a request from the ``rpm`` bucket, the estimated prompt
tokens from the ``tpm`` bucket, and a reservation of the most the request can cost from the period's budget:
prompt tokens (as counted, calibrated per model) plus ``max_tokens`` (else the deployment's default output
cap), at the price of the most expensive deployment that may answer — the same prices ``cost_optimized``
routing uses. When memory or RAG will add to the prompt, the ``rpm`` request is taken first, so a refused
client costs no store lookups.

Settlement replaces the estimate with what the upstream reported (prompt and completion tokens, priced at the
deployment that answered, prompt-cache reads and writes at their own rates); a stream cut off mid-way settles
what was reported, else an estimate of what was sent; a failed request gives its reservation and tokens back.
Settlement runs in the background.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ailb.contract import ChatCall, StreamChunk, Usage
from ailb.providers.choices import choice_count
from ailb.routing.pricing import Price
from ailb.routing.streaming import PassedChunks
from ailb.state import Draw, Reservation, Settlement
from ailb.token_estimate import estimate_tokens

if TYPE_CHECKING:
    from ailb.governance.governor import Governor
    from ailb.routing.catalog import Target
    from ailb.routing.router import RouteInfo, Router
    from ailb.tenancy import ClientKey, KeyLimits

log = logging.getLogger("ailb.governance")
SECONDS_PER_MINUTE = 60.0


def rpm_bucket(name: str) -> str:
    return f"rpm:{name}"


def tpm_bucket(name: str) -> str:
    return f"tpm:{name}"


def ledger_name(name: str, period: str, start: float) -> str:
    return f"spend:{name}:{period}:{int(start)}"


class Meter:
    def __init__(self, governor: Governor, key: ClientKey, limits: KeyLimits, now: float) -> None:
        self.governor = governor
        self.key = key
        self.limits = limits
        self.period_start, self.period_end = limits.period.bounds(now)
        self.ledger = ledger_name(key.name, limits.period.text, self.period_start)
        self.prompt_tokens = 0
        self.reserved_usd = 0.0
        rpm = limits.rpm
        self._rpm = None if rpm is None else Draw(rpm_bucket(key.name), rpm, rpm / SECONDS_PER_MINUTE, 1)
        self._request_taken = self._rpm is None
        self._targets: tuple[Target, ...] = ()
        self._router: Router | None = None
        self._open = False

    # --- admission ------------------------------------------------------------------------------------------
    async def take_request(self) -> None:
        """Count the request against ``rpm`` now, before work that a refusal would waste."""
        if self._rpm is not None and not self._request_taken:
            refusal = await self.governor.store.acquire((self._rpm,))
            if refusal is not None:
                raise self.governor.refused(self, refusal)
            self._request_taken = True

    async def reserve(self, call: ChatCall, router: Router, targets: tuple[Target, ...]) -> int:
        """Admit the request with its prompt as it will be sent (``targets``: its model, resolved); returns the
        prompt's token count."""
        prompt_tokens = await router.count_prompt(call)
        # n choices cost at most n times one (emulated n reads the prompt once per choice).
        choices = choice_count(call.body)
        await self._admit(router, targets, prompt_tokens, call.max_tokens, choices)
        return prompt_tokens

    async def reserve_input(self, router: Router, targets: tuple[Target, ...], prompt_tokens: int) -> None:
        """Admit a request that reads ``prompt_tokens`` and writes nothing back (embeddings)."""
        await self._admit(router, targets, prompt_tokens, 0, 1)

    async def _admit(
        self, router: Router, targets: tuple[Target, ...], prompt_tokens: int, max_tokens: int | None, choices: int
    ) -> None:
        self._router = router
        self._targets = targets
        self.prompt_tokens = prompt_tokens
        self.reserved_usd = self._most_it_can_cost(router, max_tokens) * choices
        draws = [self._rpm] if self._rpm is not None and not self._request_taken else []
        tpm = self.limits.tpm
        if tpm is not None:
            draws.append(Draw(tpm_bucket(self.key.name), tpm, tpm / SECONDS_PER_MINUTE, prompt_tokens))
        reservation = Reservation(self.ledger, self.reserved_usd, self.limits.max_budget_usd, self.period_end)
        refusal = await self.governor.store.acquire(draws, reservation)
        if refusal is not None:
            raise self.governor.refused(self, refusal)
        self._request_taken = self._open = True

    def _most_it_can_cost(self, router: Router, max_tokens: int | None) -> float:
        most = 0.0
        for target in self._targets:
            price = router.prices.price(target.deployment.config, target.model)
            if price is None:  # an unknown price cannot be metered (see the README)
                continue
            prompt = router.tokens.calibrated(target.model, self.prompt_tokens)
            completion = max_tokens if max_tokens is not None else target.max_output
            most = max(most, price.cost(prompt, completion))
        return most

    # --- settlement -----------------------------------------------------------------------------------------
    def release(self) -> None:
        """The request failed before an answer: give back its reservation and tokens."""
        self._settle(0, 0, 0.0)

    def settle(self, usage: Usage | None, text: str, route: RouteInfo) -> None:
        """Settle what the upstream reported; a count it did not report is estimated."""
        if not self._open:
            return
        prompt = usage.prompt_tokens if usage is not None and usage.prompt_tokens else self.prompt_tokens
        completion = usage.completion_tokens if usage is not None and usage.completion_tokens else 0
        if not completion and text:
            completion = estimate_tokens(text)
        price = self._price_of(route)
        cached = (usage.cache_read_tokens, usage.cache_write_tokens) if usage is not None else (0, 0)
        spent = price.cost_of(Usage(prompt, completion, *cached)) if price is not None else 0.0
        self._settle(prompt, completion, spent)

    def track(self, chunks: AsyncIterator[StreamChunk], route: RouteInfo) -> MeteredChunks:
        return MeteredChunks(self, chunks, route)

    def _price_of(self, route: RouteInfo) -> Price | None:
        if self._router is None:
            return None
        for target in self._targets:
            if target.deployment.name == route.deployment:
                return self._router.prices.price(target.deployment.config, route.model)
        return None

    def _settle(self, prompt: int, completion: int, spent: float) -> None:
        if not self._open:
            return
        self._open = False
        draws: tuple[Draw, ...] = ()
        tpm = self.limits.tpm
        if tpm is not None:
            used = prompt + completion - self.prompt_tokens
            draws = (Draw(tpm_bucket(self.key.name), tpm, tpm / SECONDS_PER_MINUTE, used),)
        settlement = Settlement(self.ledger, self.reserved_usd, spent, prompt, completion, self.period_end)
        self.governor.submit(draws, settlement, self.key.name, spent)


class MeteredChunks(PassedChunks):
    """A stream's chunks, passed through; the request is settled exactly once, however the stream ends (its
    end, an upstream failure, the client closing it, or being dropped unread)."""

    def __init__(self, meter: Meter, chunks: AsyncIterator[StreamChunk], route: RouteInfo) -> None:
        super().__init__(chunks)
        self._meter = meter
        self._route = route
        self._settled = False

    async def __anext__(self) -> StreamChunk:
        try:
            chunk = await anext(self._chunks)
        except BaseException:
            self._finish()
            raise
        return self._seen(chunk)

    async def aclose(self) -> None:
        self._finish()
        await super().aclose()

    def __del__(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self._settled:
            self._settled = True
            self._meter.settle(self._usage, self._text(), self._route)
