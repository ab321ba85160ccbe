"""Two lanes in front of the embedding model, so a search query never waits behind bulk embedding.

Each lane is one daemon thread running the (shared, read-only) model on what is queued for it:

- the **query** lane (``embed_query``: memory recall, RAG retrieval) at the thread priority the process has;
- the **bulk** lane (``embed``: ingestion, memory turns written in the background) at a lower OS priority
  (a higher nice value, on Linux), so on a busy CPU the scheduler runs queries and the event loop first and
  bulk work gets what is left; with two CPUs both lanes run at once.

A lane encodes a batch at a time. Texts queued while it encodes go into the next batch together
(micro-batching), oldest first, but a text joins a batch only while the batch stays within ``batch_tokens``
padded tokens and padding wastes at most ``MAX_PADDING_SHARE`` of it: the model pads every text of a batch to
the longest, and on a CPU a batch costs about its padded tokens, so batching short queries with a long one
would make them wait for work they do not need. Long bulk requests are thereby cut into small batches.

The query lane serves its newest texts first while its oldest has waited longer than ``newest_first_after``
(adaptive LIFO): a model that falls behind (a burst, a busy CPU) then keeps answering fresh queries within
about one encode, and the stale ones, whose callers are about to give up (memory recall waits at most its
recall timeout), wait; first in, first out again once the backlog is fresh.

Texts are measured in the lane (tokenized, truncated to the model's window) and looked up in a cache keyed by
those token ids: what the model sees decides the vector, so a text already encoded as a query (say, a long
user message) is not encoded again when its turn is stored. Only the query lane fills the cache: bulk
ingestion would otherwise flush it.

A request may ask for only the first ``window`` tokens of its texts (memory recall matches a long new message by
its start): the lane cuts each text there (``Cut``, on its own thread, with the model's tokenizer) before it
measures it, so the model encodes, and the cache keys, exactly those tokens.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ailb.embeddings.cache import VectorCache
from ailb.embeddings.native_work import native_call

log = logging.getLogger("ailb.embeddings")

Vectors = npt.NDArray[np.float32]
Encode = Callable[[list[str]], Vectors]
Measure = Callable[[list[str]], list[list[int]]]  # token ids of each text, truncated to the model's window
Cut = Callable[[str, int], str]  # the start of a text holding at most that many tokens (special ones excluded)
MAX_PADDING_SHARE = 0.25
QUERY_BATCH_TOKENS = 256  # one full window: a batch of queries takes at most about as long as one long query
BULK_BATCH_TOKENS = 1024
BULK_NICENESS = 10  # on a shared CPU the bulk lane gets about a tenth of what a normal thread gets
QUERY_NEWEST_FIRST_AFTER = 0.1  # seconds the oldest query waits before the query lane serves the newest first


class LaneClosed(RuntimeError):
    """The lane was closed before this request was encoded."""


@dataclass(eq=False, slots=True)
class Request:
    """One caller's texts; ``future`` gets their vectors (as lists, in order) once all are encoded."""

    texts: list[str]
    future: Future[list[list[float]]] = field(default_factory=Future)
    submitted: float = 0.0  # the lane's clock when it was submitted
    window: int | None = None  # encode only the first ``window`` tokens of each text
    vectors: list[list[float] | None] = field(init=False)
    left: int = field(init=False)

    def __post_init__(self) -> None:
        self.vectors = [None] * len(self.texts)
        self.left = len(self.texts)

    @property
    def abandoned(self) -> bool:
        return self.future.done()  # cancelled by its caller, or already failed

    def deliver(self, index: int, vector: list[float]) -> None:
        self.vectors[index] = vector
        self.left -= 1
        if self.left == 0:
            _settle(self.future, [v for v in self.vectors if v is not None], None)

    def fail(self, error: BaseException) -> None:
        _settle(self.future, None, error)


@dataclass(eq=False, slots=True)
class Job:
    """One text of a request, measured: ``tokens`` is what it costs in a batch, ``key`` its cache key."""

    request: Request
    index: int
    tokens: int
    key: bytes

    @property
    def text(self) -> str:
        return self.request.texts[self.index]


def take_batch(waiting: list[Job], batch_tokens: int, max_padding_share: float = MAX_PADDING_SHARE) -> list[Job]:
    """Remove and return the next batch: the oldest job, then every later one (oldest first) that keeps the
    batch within ``batch_tokens`` padded tokens and its padding within ``max_padding_share`` of them."""
    if not waiting:
        return []
    batch = [waiting[0]]
    longest, real = waiting[0].tokens, waiting[0].tokens
    rest: list[Job] = []
    for job in waiting[1:]:
        widest = max(longest, job.tokens)
        padded = widest * (len(batch) + 1)
        if padded <= batch_tokens and padded - (real + job.tokens) <= max_padding_share * padded:
            batch.append(job)
            longest, real = widest, real + job.tokens
        else:
            rest.append(job)
    waiting[:] = rest
    return batch


class EncoderLane:
    """One thread encoding the requests submitted to it, in micro-batches (see the module docstring)."""

    def __init__(
        self,
        name: str,
        encode: Encode,
        measure: Measure,
        cache: VectorCache,
        *,
        batch_tokens: int,
        cut: Cut | None = None,
        fills_cache: bool = False,
        niceness: int = 0,
        newest_first_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.batch_tokens = batch_tokens
        self.fills_cache = fills_cache
        self.niceness = niceness
        self.newest_first_after = newest_first_after
        self.batches = 0  # batches encoded so far
        self._clock = clock
        self._encode = encode
        self._measure = measure
        self._cut = cut
        self._cache = cache
        self._arrived: list[Request] = []
        self._waiting: list[Job] = []  # measured, not encoded yet; only the lane's thread touches it
        self._wakeup = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def submit(self, texts: Sequence[str], window: int | None = None) -> Future[list[list[float]]]:
        """Queue ``texts`` (each cut to its first ``window`` tokens, when given: the lane needs a ``cut``); the
        future gets one vector per text, in order (``LaneClosed`` once closed)."""
        if window is not None and self._cut is None:
            raise ValueError(f"the {self.name} lane cannot cut texts to a window")
        request = Request(list(texts), submitted=self._clock(), window=window)
        if not request.texts:
            request.future.set_result([])
            return request.future
        with self._wakeup:
            if self._closed:
                raise LaneClosed(f"the {self.name} lane is closed")
            if self._thread.ident is None:
                self._thread.start()
            self._arrived.append(request)
            self._wakeup.notify()
        return request.future

    def close(self) -> None:
        """Fail every request not encoded yet and stop the thread (a batch being encoded finishes first)."""
        with self._wakeup:
            self._closed = True
            arrived, self._arrived = self._arrived, []
            self._wakeup.notify()
        for request in arrived:
            request.fail(LaneClosed(f"the {self.name} lane is closed"))

    # --- the lane's thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        if self.niceness:
            lower_thread_priority(self.niceness)
        while (arrived := self._next_arrivals()) is not None:
            self._admit(arrived)
            self._waiting = [job for job in self._waiting if not job.request.abandoned]
            batch = self._next_batch()
            if batch:
                self._encode_batch(batch)
        for job in self._waiting:
            job.request.fail(LaneClosed(f"the {self.name} lane is closed"))
        self._waiting = []

    def _next_batch(self) -> list[Job]:
        """Oldest first; newest first while the oldest has waited longer than ``newest_first_after``."""
        waiting, limit = self._waiting, self.newest_first_after
        if limit is None or not waiting or self._clock() - waiting[0].request.submitted <= limit:
            return take_batch(waiting, self.batch_tokens)
        waiting.reverse()
        batch = take_batch(waiting, self.batch_tokens)
        waiting.reverse()
        return batch

    def _next_arrivals(self) -> list[Request] | None:
        """What arrived since the last look; waits for it when nothing is left to encode. None once closed."""
        with self._wakeup:
            while not self._arrived and not self._waiting and not self._closed:
                self._wakeup.wait()
            if self._closed:
                return None
            arrived, self._arrived = self._arrived, []
            return arrived

    def _admit(self, arrived: list[Request]) -> None:
        """Cut and measure new texts; answer those the cache knows, queue the others."""
        for request in arrived:
            try:
                if request.window is not None and self._cut is not None:
                    request.texts = [self._cut(text, request.window) for text in request.texts]
                token_ids = self._measure(request.texts)
            except Exception as exc:  # a tokenizer failure fails its request, never the lane
                request.fail(exc)
                continue
            for index, ids in enumerate(token_ids):
                key = np.asarray(ids, dtype=np.int32).tobytes()
                cached = self._cache.get(key)
                if cached is not None:
                    request.deliver(index, cached)
                else:
                    self._waiting.append(Job(request, index, len(ids), key))

    def _encode_batch(self, batch: list[Job]) -> None:
        self.batches += 1
        try:
            with native_call():
                vectors = self._encode([job.text for job in batch]).tolist()
        except Exception as exc:
            for job in batch:
                job.request.fail(exc)
            return
        for job, vector in zip(batch, vectors, strict=True):
            if self.fills_cache:
                self._cache.put(job.key, vector)
            job.request.deliver(job.index, vector)


def lower_thread_priority(increment: int) -> None:
    """Raise the calling thread's nice value by ``increment`` (Linux: nice values are per thread)."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + increment))
    except OSError as exc:  # a sandbox may forbid it: the lanes still work, without the priority
        log.debug("could not lower the priority of the bulk embedding thread: %s", exc)


def _settle(future: Future[list[list[float]]], result: list[list[float]] | None, error: BaseException | None) -> None:
    """Complete ``future`` unless its caller cancelled it meanwhile."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])
    except InvalidStateError:  # cancelled between the check and now
        pass
