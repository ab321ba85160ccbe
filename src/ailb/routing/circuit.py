"""A circuit breaker per deployment.

    closed ──(N consecutive failures, or a high failure ratio, or 429 Retry-After, or 401/403)──▶ open
    open ──(cooldown elapsed)──▶ half_open: exactly one probe request is let through
    half_open ──probe succeeds──▶ closed (cooldown back to its base)
    half_open ──probe fails──▶ open again with the cooldown doubled, up to the cap

Nothing stays excluded forever: every open state ends in a probe. An active health check that passes closes
an open circuit early, unless an upstream ``Retry-After`` still holds it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ailb.settings import RouterConfig

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
RATIO_WINDOW_SECONDS = 60.0
RATIO_WINDOW_SAMPLES = 1000


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failure_threshold: int = 3
    failure_ratio: float = 0.5
    min_requests: int = 20
    cooldown: float = 5.0
    cooldown_cap: float = 300.0

    @classmethod
    def from_config(cls, config: RouterConfig) -> CircuitPolicy:
        return cls(
            failure_threshold=config.failure_threshold,
            failure_ratio=config.failure_ratio,
            min_requests=config.failure_ratio_min_requests,
            cooldown=config.cooldown,
            cooldown_cap=max(config.cooldown, config.cooldown_cap),
        )


class CircuitBreaker:
    """State changes are reported by the ``record_*`` methods' return value: ``True`` when ``up`` flipped."""

    def __init__(self, policy: CircuitPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self._open = False
        self._open_until = 0.0
        self._hold_until = 0.0
        self._probing = False
        self._cooldown = policy.cooldown
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=RATIO_WINDOW_SAMPLES)

    @property
    def state(self) -> str:
        if not self._open:
            return CLOSED
        return OPEN if self._clock() < self._open_until else HALF_OPEN

    @property
    def up(self) -> bool:
        return not self._open

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    @property
    def cooldown(self) -> float:
        """The cooldown the next (re-)opening uses."""
        return self._cooldown

    def available(self) -> bool:
        if not self._open:
            return True
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self._probing)

    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when it already would)."""
        return max(0.0, self._open_until - self._clock()) if self._open else 0.0

    def acquire(self) -> bool:
        """Claim a slot for one attempt; ``True`` when that attempt is the half-open probe."""
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def release(self, probe: bool) -> None:
        """The attempt ended without a verdict (cancelled, or a client error)."""
        if probe:
            self._probing = False

    def record_success(self, probe: bool) -> bool:
        if not self._open:
            self._consecutive = 0
            self._outcomes.append((self._clock(), False))
            return False
        if probe:
            self._close()
            return True
        return False

    def record_failure(self, probe: bool, retry_after: float | None = None) -> bool:
        if self._open:
            if probe:
                self._probing = False
                self._reopen(retry_after)
            elif retry_after is not None:
                self._hold(retry_after)
            return False
        self._consecutive += 1
        self._outcomes.append((self._clock(), True))
        if retry_after is not None:
            self._hold(retry_after)
            return True
        if self._consecutive >= self.policy.failure_threshold or self._ratio_exceeded():
            self._open_for(self._cooldown)
            return True
        return False

    def trip(self, probe: bool) -> bool:
        """Open at once (the deployment is misconfigured); a failed probe doubles the cooldown as usual."""
        if self._open:
            if probe:
                self._probing = False
                self._reopen(None)
            return False
        self._open_for(self._cooldown)
        return True

    def recovered(self) -> bool:
        """A token-free health check passed: close an open circuit unless an upstream Retry-After holds it."""
        if self._open and self._clock() >= self._hold_until:
            self._close()
            return True
        return False

    def adopt(self, other: CircuitBreaker) -> None:
        """Carry state over a configuration reload (thresholds come from the new policy)."""
        self._open, self._open_until, self._hold_until = other._open, other._open_until, other._hold_until
        self._cooldown = min(max(other._cooldown, self.policy.cooldown), self.policy.cooldown_cap)
        self._consecutive = other._consecutive
        self._outcomes = deque(other._outcomes, maxlen=RATIO_WINDOW_SAMPLES)

    def _ratio_exceeded(self) -> bool:
        horizon = self._clock() - RATIO_WINDOW_SECONDS
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()
        total = len(self._outcomes)
        if total < self.policy.min_requests:
            return False
        failed = sum(1 for _, bad in self._outcomes if bad)
        return failed / total >= self.policy.failure_ratio

    def _reopen(self, retry_after: float | None) -> None:
        if retry_after is not None:
            self._hold(retry_after)
            return
        self._cooldown = min(self._cooldown * 2, self.policy.cooldown_cap)
        self._open_for(self._cooldown)

    def _hold(self, seconds: float) -> None:
        until = self._clock() + max(0.0, seconds)
        if self._open and self._open_until >= until:
            self._hold_until = max(self._hold_until, until)
            return
        self._open_for(seconds)
        self._hold_until = self._open_until

    def _open_for(self, seconds: float) -> None:
        self._open = True
        self._open_until = self._clock() + max(0.0, seconds)
        self._probing = False
        self._consecutive = 0
        self._outcomes.clear()

    def _close(self) -> None:
        self._open = False
        self._probing = False
        self._cooldown = self.policy.cooldown
        self._consecutive = 0
        self._outcomes.clear()
