"""Calls into the embedding runtime (ONNX Runtime or torch) under way on daemon threads.

A process that exits while a daemon thread is inside the runtime (loading the model, encoding a batch) runs the
runtime's C++ static destructors under that thread, and the C++ runtime aborts it: "terminate called without an
active exception", SIGABRT. The ``ailb`` command's exit (``ailb.cli.exit_process``) calls ``close()``: from then
on no call enters the runtime, and while one is still inside it the process leaves without finalizing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_calls = 0
_closed = False


class ProcessExiting(RuntimeError):
    """A runtime call refused because the process is exiting."""


@contextmanager
def native_call() -> Iterator[None]:
    """Wrap a call into the runtime made on a daemon thread (``ProcessExiting`` once ``close()`` was called)."""
    global _calls
    with _lock:
        if _closed:
            raise ProcessExiting("the process is exiting")
        _calls += 1
    try:
        yield
    finally:
        with _lock:
            _calls -= 1


def under_way() -> bool:
    return _calls > 0


def close() -> bool:
    """Refuse every later call; whether one is still inside the runtime."""
    global _closed
    with _lock:
        _closed = True
        return _calls > 0
