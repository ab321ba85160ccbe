from __future__ import annotations

import pytest

from ailb.routing.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitPolicy

from .support import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, **policy: float) -> CircuitBreaker:
    return CircuitBreaker(CircuitPolicy(**policy), clock)  # type: ignore[arg-type]


def trip(circuit: CircuitBreaker, failures: int = 3) -> None:
    for _ in range(failures):
        circuit.record_failure(probe=circuit.acquire())


def test_opens_after_consecutive_failures_only(clock: Clock) -> None:
    circuit = breaker(clock)
    assert not circuit.record_failure(probe=False)
    assert not circuit.record_failure(probe=False)
    circuit.record_success(probe=False)  # resets the run
    assert not circuit.record_failure(probe=False)
    assert not circuit.record_failure(probe=False)
    assert circuit.state == CLOSED
    assert circuit.record_failure(probe=False) is True
    assert circuit.state == OPEN and not circuit.up and not circuit.available()
    assert circuit.retry_in() == pytest.approx(5.0)


def test_half_open_lets_exactly_one_probe_through(clock: Clock) -> None:
    circuit = breaker(clock)
    trip(circuit)
    clock.advance(5.0)
    assert circuit.state == HALF_OPEN and circuit.available()
    assert circuit.acquire() is True
    assert not circuit.available()
    assert circuit.acquire() is False


def test_successful_probe_closes_and_resets_cooldown(clock: Clock) -> None:
    circuit = breaker(clock)
    trip(circuit)
    clock.advance(5.0)
    probe = circuit.acquire()
    assert circuit.record_success(probe) is True
    assert circuit.state == CLOSED and circuit.up and circuit.cooldown == 5.0


def test_failed_probe_reopens_with_doubled_cooldown_up_to_the_cap(clock: Clock) -> None:
    circuit = breaker(clock, cooldown=5.0, cooldown_cap=300.0)
    trip(circuit)
    seen = []
    for _ in range(8):
        clock.advance(circuit.retry_in())
        assert circuit.state == HALF_OPEN
        circuit.record_failure(probe=circuit.acquire())
        seen.append(circuit.retry_in())
    assert seen == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    clock.advance(300.0)
    circuit.record_success(probe=circuit.acquire())
    trip(circuit)
    assert circuit.retry_in() == 5.0  # back to the base after closing


def test_results_of_requests_other_than_the_probe_do_not_decide(clock: Clock) -> None:
    circuit = breaker(clock)
    trip(circuit)
    assert circuit.record_success(probe=False) is False  # a request started before it opened
    assert circuit.state == OPEN
    clock.advance(5.0)
    circuit.acquire()
    circuit.record_failure(probe=False)
    assert circuit.state == HALF_OPEN


def test_a_probe_released_without_verdict_frees_the_slot(clock: Clock) -> None:
    circuit = breaker(clock)
    trip(circuit)
    clock.advance(5.0)
    probe = circuit.acquire()
    circuit.release(probe)
    assert circuit.available() and circuit.state == HALF_OPEN


def test_opens_on_a_high_failure_ratio_over_enough_requests(clock: Clock) -> None:
    circuit = breaker(clock, failure_threshold=100, failure_ratio=0.5, min_requests=10)
    for _ in range(4):
        circuit.record_failure(probe=False)
        circuit.record_success(probe=False)
    assert circuit.state == CLOSED  # 4 of 8: not enough requests yet
    circuit.record_success(probe=False)
    assert circuit.record_failure(probe=False) is True  # 5 of 10
    assert circuit.state == OPEN


def test_old_outcomes_fall_out_of_the_ratio_window(clock: Clock) -> None:
    circuit = breaker(clock, failure_threshold=100, failure_ratio=0.5, min_requests=4)
    circuit.record_failure(probe=False)
    circuit.record_failure(probe=False)
    clock.advance(120.0)
    circuit.record_success(probe=False)
    circuit.record_success(probe=False)
    circuit.record_failure(probe=False)
    assert circuit.state == CLOSED


def test_retry_after_opens_for_exactly_that_long(clock: Clock) -> None:
    circuit = breaker(clock)
    assert circuit.record_failure(probe=False, retry_after=42.0) is True
    assert circuit.state == OPEN and circuit.retry_in() == 42.0
    assert circuit.cooldown == 5.0  # does not escalate the cooldown
    clock.advance(42.0)
    assert circuit.state == HALF_OPEN


def test_a_passing_health_check_closes_but_not_during_retry_after(clock: Clock) -> None:
    circuit = breaker(clock)
    trip(circuit)
    assert circuit.recovered() is True and circuit.state == CLOSED
    circuit.record_failure(probe=False, retry_after=30.0)
    assert circuit.recovered() is False and circuit.state == OPEN
    clock.advance(30.0)
    assert circuit.recovered() is True and circuit.state == CLOSED


def test_trip_opens_at_once(clock: Clock) -> None:
    circuit = breaker(clock)
    assert circuit.trip(probe=False) is True
    assert circuit.state == OPEN and circuit.retry_in() == 5.0


def test_nothing_is_excluded_forever(clock: Clock) -> None:
    circuit = breaker(clock, cooldown=1.0, cooldown_cap=8.0)
    trip(circuit)
    for _ in range(50):
        clock.advance(circuit.retry_in())
        assert circuit.available()
        circuit.record_failure(probe=circuit.acquire())
    assert circuit.retry_in() == 8.0


def test_adopt_carries_state_over_a_reload(clock: Clock) -> None:
    old = breaker(clock)
    trip(old)
    new = breaker(clock, cooldown=2.0, cooldown_cap=4.0)
    new.adopt(old)
    assert new.state == OPEN and new.retry_in() == 5.0
    clock.advance(5.0)
    new.record_failure(probe=new.acquire())
    assert new.retry_in() == 4.0  # the new policy's cap applies
