"""The embedding lanes: batching, priority of queries over bulk work, the token-keyed cache, cancellation.

The encoder here is a fake that blocks each call until the test lets it finish, so every interleaving is
chosen by the test, not by timing (the waits below only guard against a hang).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError

import numpy as np
import pytest

from ailb.embeddings.cache import VectorCache
from ailb.embeddings.lanes import Cut, EncoderLane, Job, LaneClosed, Request, Vectors, take_batch

WAIT = 10.0  # seconds: only ever reached when the code under test hangs


class GatedEncoder:
    """``encode`` records its batch, announces it on ``entered`` and waits until the test releases that call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], int]] = []  # (thread name, texts, thread nice value)
        self.entered: queue.Queue[int] = queue.Queue()
        self._gates: list[threading.Event] = []
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> Vectors:
        with self._lock:
            number = len(self.calls)
            self.calls.append((threading.current_thread().name, list(texts), _nice()))
            gate = threading.Event()
            self._gates.append(gate)
        self.entered.put(number)
        if not gate.wait(WAIT):
            raise RuntimeError("the test never released this call")
        if "boom" in texts:
            raise ValueError("the model failed")
        return np.asarray([vector_of(text) for text in texts], dtype=np.float32)

    def next_call(self) -> int:
        return self.entered.get(timeout=WAIT)

    def release(self, number: int) -> None:
        self._gates[number].set()

    def release_all(self) -> None:
        with self._lock:
            for gate in self._gates:
                gate.set()


def vector_of(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97)]


def measure(texts: list[str]) -> list[list[int]]:
    """Tokens are words, truncated to a window of 4."""
    return [[sum(map(ord, word)) for word in text.split()][:4] for text in texts]


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if sys.platform == "linux" else 0


@pytest.fixture
def encoder() -> Iterator[GatedEncoder]:
    encoder = GatedEncoder()
    yield encoder
    encoder.release_all()


def lane(
    encoder: GatedEncoder,
    name: str = "test-lane",
    *,
    batch_tokens: int = 16,
    cache: VectorCache | None = None,
    fills_cache: bool = False,
    niceness: int = 0,
    newest_first_after: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    cut: Cut | None = None,
) -> EncoderLane:
    return EncoderLane(
        name, encoder.encode, measure, cache if cache is not None else VectorCache(64),
        batch_tokens=batch_tokens, cut=cut, fills_cache=fills_cache, niceness=niceness,
        newest_first_after=newest_first_after, clock=clock,
    )  # fmt: skip


def first_words(text: str, tokens: int) -> str:
    return " ".join(text.split()[:tokens])


def job(tokens: int, label: str = "") -> Job:
    return Job(Request([label or f"{tokens} tokens"]), 0, tokens, label.encode())


# --- planning a batch ---------------------------------------------------------------------------------------
def test_a_batch_starts_with_the_oldest_job_and_takes_later_ones_that_fit() -> None:
    waiting = [job(3, "a"), job(3, "b"), job(2, "c"), job(3, "d")]
    batch = take_batch(waiting, batch_tokens=9)
    assert [j.request.texts[0] for j in batch] == ["a", "b", "c"]  # 3 × 3 padded tokens: "d" would make 12
    assert [j.request.texts[0] for j in waiting] == ["d"]


def test_a_short_text_does_not_join_a_batch_it_would_mostly_pad() -> None:
    waiting = [job(2, "short"), job(40, "long"), job(3, "short too")]
    batch = take_batch(waiting, batch_tokens=256)
    assert [j.request.texts[0] for j in batch] == ["short", "short too"]
    assert [j.request.texts[0] for j in waiting] == ["long"]
    assert [j.request.texts[0] for j in take_batch(waiting, batch_tokens=256)] == ["long"]
    assert waiting == []


def test_the_oldest_job_goes_even_when_it_alone_exceeds_the_budget() -> None:
    waiting = [job(300, "huge"), job(1, "tiny")]
    assert [j.request.texts[0] for j in take_batch(waiting, batch_tokens=256)] == ["huge"]
    assert take_batch([], batch_tokens=256) == []


# --- the lane's thread --------------------------------------------------------------------------------------
def test_queries_arriving_while_the_lane_is_busy_are_encoded_together_next(encoder: GatedEncoder) -> None:
    queries = lane(encoder)
    first = queries.submit(["first question"])
    assert encoder.next_call() == 0
    later = [queries.submit([f"question {n}"]) for n in range(3)]
    encoder.release(0)
    assert first.result(WAIT) == [vector_of("first question")]
    assert encoder.next_call() == 1
    assert encoder.calls[1][1] == ["question 0", "question 1", "question 2"]
    encoder.release(1)
    assert [f.result(WAIT) for f in later] == [[vector_of(f"question {n}")] for n in range(3)]
    assert queries.batches == 2
    queries.close()


def test_a_lane_that_fell_behind_serves_its_newest_texts_first_until_the_backlog_is_fresh(
    encoder: GatedEncoder,
) -> None:
    now = [0.0]
    queries = lane(encoder, batch_tokens=2, newest_first_after=0.1, clock=lambda: now[0])  # one text a batch
    running = queries.submit(["running now"])
    assert encoder.next_call() == 0
    stale = [queries.submit([f"stale {n}"]) for n in range(2)]
    now[0] = 1.0  # the model fell behind: the oldest waiting query has waited a second
    fresh = queries.submit(["fresh one"])
    encoder.release(0)
    assert running.result(WAIT) == [vector_of("running now")]
    assert encoder.next_call() == 1
    assert encoder.calls[1][1] == ["fresh one"]
    encoder.release(1)
    assert fresh.result(WAIT) == [vector_of("fresh one")]
    assert encoder.next_call() == 2
    encoder.release(2)
    assert encoder.next_call() == 3
    encoder.release(3)
    assert [f.result(WAIT) for f in stale] == [[vector_of("stale 0")], [vector_of("stale 1")]]
    # still behind after the fresh one: the newer of the stale two next
    assert [call[1] for call in encoder.calls] == [["running now"], ["fresh one"], ["stale 1"], ["stale 0"]]
    queries.close()


def test_a_lane_serves_oldest_first_while_its_backlog_is_fresh(encoder: GatedEncoder) -> None:
    now = [0.0]
    queries = lane(encoder, batch_tokens=2, newest_first_after=0.1, clock=lambda: now[0])
    queries.submit(["running now"])
    assert encoder.next_call() == 0
    waiting = [queries.submit([f"question {n}"]) for n in range(3)]
    now[0] = 0.05
    for number in range(3):
        encoder.release(number)
        assert encoder.next_call() == number + 1
    encoder.release(3)
    assert [f.result(WAIT) for f in waiting] == [[vector_of(f"question {n}")] for n in range(3)]
    assert [call[1] for call in encoder.calls[1:]] == [["question 0"], ["question 1"], ["question 2"]]
    queries.close()


def test_a_query_is_encoded_while_bulk_work_is_still_running(encoder: GatedEncoder) -> None:
    cache = VectorCache(64)
    bulk = lane(encoder, "test-bulk", cache=cache, niceness=5)
    queries = lane(encoder, "test-query", cache=cache, fills_cache=True)
    ingest = bulk.submit(["chunk one", "chunk two"])
    assert encoder.next_call() == 0
    question = queries.submit(["a question"])
    assert encoder.next_call() == 1  # encoded now, on its own thread, while the bulk batch is still in the model
    encoder.release(1)
    assert question.result(WAIT) == [vector_of("a question")]
    assert not ingest.done()
    encoder.release(0)
    assert ingest.result(WAIT) == [vector_of("chunk one"), vector_of("chunk two")]
    assert [call[0] for call in encoder.calls] == ["test-bulk", "test-query"]
    bulk.close()
    queries.close()


@pytest.mark.skipif(sys.platform != "linux", reason="thread priorities are a Linux feature here")
def test_the_bulk_lane_runs_at_a_lower_priority_than_the_query_lane(encoder: GatedEncoder) -> None:
    bulk = lane(encoder, "test-bulk", niceness=5)
    queries = lane(encoder, "test-query")
    futures = [bulk.submit(["chunk"]), queries.submit(["question"])]
    for _ in futures:
        encoder.release(encoder.next_call())
    for future in futures:
        future.result(WAIT)
    nice = {name: value for name, _, value in encoder.calls}
    assert nice["test-bulk"] == min(19, nice["test-query"] + 5)
    bulk.close()
    queries.close()


def test_a_long_bulk_request_is_cut_into_batches_of_similar_lengths(encoder: GatedEncoder) -> None:
    bulk = lane(encoder, "test-bulk", batch_tokens=8)
    texts = ["a b c d", "e", "f g h i", "j", "k l m n", "o"]
    future = bulk.submit(texts)
    batches = []
    while len(batches) < 3:
        number = encoder.next_call()
        batches.append(encoder.calls[number][1])
        encoder.release(number)
    assert batches == [["a b c d", "f g h i"], ["e", "j", "o"], ["k l m n"]]
    assert future.result(WAIT) == [vector_of(t) for t in texts]  # in the order given
    bulk.close()


def test_texts_the_query_lane_encoded_are_not_encoded_again(encoder: GatedEncoder) -> None:
    cache = VectorCache(64)
    queries = lane(encoder, "test-query", cache=cache, fills_cache=True)
    bulk = lane(encoder, "test-bulk", cache=cache)
    question = queries.submit(["one two three four"])
    encoder.release(encoder.next_call())
    vector = question.result(WAIT)[0]
    # The same first four tokens: the model would see the same window, so it would give the same vector.
    stored = bulk.submit(["one two three four five six", "other"])
    encoder.release(encoder.next_call())
    assert stored.result(WAIT) == [vector, vector_of("other")]
    assert [call[1] for call in encoder.calls] == [["one two three four"], ["other"]]
    assert cache.hits == 1
    ingested = bulk.submit(["never cached by bulk work"])
    encoder.release(encoder.next_call())
    assert ingested.result(WAIT) == [vector_of("never cached by bulk work")]
    assert len(cache) == 1  # bulk results never push queries out of the cache
    bulk.close()
    queries.close()


def test_a_windowed_request_is_encoded_and_cached_as_its_first_tokens(encoder: GatedEncoder) -> None:
    cache = VectorCache(64)
    queries = lane(encoder, "test-query", cache=cache, fills_cache=True, cut=first_words)
    windowed = queries.submit(["alpha beta gamma delta epsilon"], window=2)
    encoder.release(encoder.next_call())
    assert windowed.result(WAIT) == [vector_of("alpha beta")]
    whole = queries.submit(["alpha beta gamma"])  # no window: the model's own (4 tokens)
    encoder.release(encoder.next_call())
    assert whole.result(WAIT) == [vector_of("alpha beta gamma")]
    again = queries.submit(["alpha beta and more"], window=2)  # the same first two tokens: from the cache
    assert again.result(WAIT) == [vector_of("alpha beta")]
    assert [call[1] for call in encoder.calls] == [["alpha beta"], ["alpha beta gamma"]]
    queries.close()


def test_a_lane_that_cannot_cut_refuses_a_window(encoder: GatedEncoder) -> None:
    bulk = lane(encoder)
    with pytest.raises(ValueError, match="cannot cut"):
        bulk.submit(["alpha beta gamma"], window=2)
    assert encoder.calls == []
    bulk.close()


def test_a_cancelled_request_is_never_encoded(encoder: GatedEncoder) -> None:
    bulk = lane(encoder)
    running = bulk.submit(["running"])
    assert encoder.next_call() == 0
    abandoned = bulk.submit(["abandoned"])
    assert abandoned.cancel()
    kept = bulk.submit(["kept"])
    encoder.release(0)
    assert encoder.next_call() == 1
    encoder.release(1)
    assert kept.result(WAIT) == [vector_of("kept")]
    assert running.result(WAIT) == [vector_of("running")]
    assert [call[1] for call in encoder.calls] == [["running"], ["kept"]]
    with pytest.raises(CancelledError):
        abandoned.result(WAIT)
    bulk.close()


def test_a_failing_batch_fails_its_requests_and_the_lane_goes_on(encoder: GatedEncoder) -> None:
    bulk = lane(encoder)
    failing = bulk.submit(["boom"])
    encoder.release(encoder.next_call())
    with pytest.raises(ValueError, match="the model failed"):
        failing.result(WAIT)
    fine = bulk.submit(["fine"])
    encoder.release(encoder.next_call())
    assert fine.result(WAIT) == [vector_of("fine")]
    bulk.close()


def test_closing_fails_what_waits_and_refuses_new_work(encoder: GatedEncoder) -> None:
    bulk = lane(encoder)
    running = bulk.submit(["running"])
    assert encoder.next_call() == 0
    waiting = bulk.submit(["waiting"])
    bulk.close()
    with pytest.raises(LaneClosed):
        waiting.result(WAIT)
    with pytest.raises(LaneClosed):
        bulk.submit(["too late"])
    encoder.release(0)
    assert running.result(WAIT) == [vector_of("running")]  # what was in the model finishes
