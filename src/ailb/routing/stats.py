"""Live measurements of one deployment: time-decaying averages, recent percentiles, tokens and cost."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ailb.contract import Usage

# How fast old latency samples lose weight (seconds); each new sample weighs at least MIN_SAMPLE_WEIGHT.
LATENCY_HALF_LIFE = 30.0
MIN_SAMPLE_WEIGHT = 0.2
MAX_KEEP = 1.0 - MIN_SAMPLE_WEIGHT
# A measurement nobody refreshed fades toward zero over this many seconds, so a once-slow deployment
# gets tried again instead of being starved forever.
STALE_HALF_LIFE = 300.0
PERCENTILE_WINDOW_SECONDS = 300.0
PERCENTILE_WINDOW_SAMPLES = 512


class DecayingAverage:
    """An exponentially weighted moving average whose memory is measured in seconds, not samples."""

    __slots__ = ("_decay", "_fade", "_keep_most_within", "_last", "_value", "half_life", "stale_half_life")

    def __init__(self, half_life: float = LATENCY_HALF_LIFE, stale_half_life: float = STALE_HALF_LIFE) -> None:
        self.half_life = half_life
        self.stale_half_life = stale_half_life
        self._decay = math.log(2) / half_life
        self._fade = math.log(2) / stale_half_life
        # Samples closer together than this keep MAX_KEEP of the average (the decay would keep more): no exp().
        self._keep_most_within = -math.log(MAX_KEEP) / self._decay
        self._value: float | None = None
        self._last = 0.0

    def add(self, sample: float, now: float) -> None:
        if self._value is None:
            self._value = sample
        else:
            elapsed = now - self._last
            keep = MAX_KEEP if elapsed < self._keep_most_within else min(math.exp(-elapsed * self._decay), MAX_KEEP)
            self._value = self._value * keep + sample * (1.0 - keep)
        self._last = now

    def value(self, now: float) -> float | None:
        """The average as seen at ``now``: ``None`` before the first sample, fading once samples stop."""
        if self._value is None:
            return None
        idle = now - self._last
        return self._value if idle <= 0.0 else self._value * math.exp(-idle * self._fade)

    def raw(self) -> float | None:
        return self._value


class RecentWindow:
    """The last samples (bounded in count and age) for p50/p95; read only by the stats endpoint."""

    __slots__ = ("_samples", "max_age")

    def __init__(self, max_age: float = PERCENTILE_WINDOW_SECONDS, size: int = PERCENTILE_WINDOW_SAMPLES) -> None:
        self.max_age = max_age
        self._samples: deque[tuple[float, float]] = deque(maxlen=size)

    def add(self, sample: float, now: float) -> None:
        self._samples.append((now, sample))

    def values_since(self, since: float) -> list[float]:
        """The samples taken after ``since`` (as far back as the window still holds them)."""
        return [value for at, value in self._samples if at > since]

    def percentile(self, fraction: float, now: float) -> float | None:
        values = sorted(value for at, value in self._samples if now - at <= self.max_age)
        if not values:
            return None
        index = min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))
        return values[index]


LAST_ERROR_CHARS = 300  # an upstream's error text is kept (and shown in stats) at most this long


@dataclass(slots=True)
class DeploymentStats:
    """Counters and averages of one deployment, shared across a configuration reload."""

    requests: int = 0
    successes: int = 0
    failures: int = 0
    client_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    last_error: str = ""
    last_error_at: float | None = None
    latency: DecayingAverage = field(default_factory=DecayingAverage)
    ttft: DecayingAverage = field(default_factory=DecayingAverage)
    latency_window: RecentWindow = field(default_factory=RecentWindow)
    ttft_window: RecentWindow = field(default_factory=RecentWindow)
    completion_average: DecayingAverage = field(default_factory=lambda: DecayingAverage(half_life=600.0))
    # Shares of prompt tokens read from / written to the upstream's prompt cache, for cost estimates.
    cache_read_share: DecayingAverage = field(default_factory=lambda: DecayingAverage(half_life=600.0))
    cache_write_share: DecayingAverage = field(default_factory=lambda: DecayingAverage(half_life=600.0))

    def expected_latency(self, stream: bool, now: float) -> float | None:
        """Time to first token for streams, whole-answer latency otherwise; ``None`` if never measured."""
        return (self.ttft if stream else self.latency).value(now)

    def expected_completion_tokens(self) -> float | None:
        return self.completion_average.raw()

    def expected_cache_shares(self) -> tuple[float, float]:
        """The shares of a prompt expected to be read from and written to the prompt cache (0 if never seen)."""
        return self.cache_read_share.raw() or 0.0, self.cache_write_share.raw() or 0.0

    def record_latency(self, seconds: float, now: float) -> None:
        self.latency.add(seconds, now)
        self.latency_window.add(seconds, now)

    def record_ttft(self, seconds: float, now: float) -> None:
        self.ttft.add(seconds, now)
        self.ttft_window.add(seconds, now)

    def record_success(self, usage: Usage | None, cost_usd: float, now: float) -> None:
        self.requests += 1
        self.successes += 1
        self.record_usage(usage, cost_usd, now)

    def record_usage(self, usage: Usage | None, cost_usd: float, now: float) -> None:
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.cache_read_tokens += usage.cache_read_tokens
            self.cache_write_tokens += usage.cache_write_tokens
            if usage.completion_tokens > 0:
                self.completion_average.add(float(usage.completion_tokens), now)
            if usage.prompt_tokens > 0:
                self.cache_read_share.add(usage.cache_read_tokens / usage.prompt_tokens, now)
                self.cache_write_share.add(usage.cache_write_tokens / usage.prompt_tokens, now)
        self.cost_usd += cost_usd

    def record_failure(self, message: str, now: float) -> None:
        self.requests += 1
        self.failures += 1
        self.note_error(message, now)

    def note_error(self, message: str, now: float) -> None:
        """Keep ``message`` (already redacted) as the last error, cut to ``LAST_ERROR_CHARS``."""
        if len(message) > LAST_ERROR_CHARS:
            message = message[: LAST_ERROR_CHARS - 1] + "…"
        self.last_error = message
        self.last_error_at = now

    def record_client_error(self) -> None:
        self.requests += 1
        self.client_errors += 1
