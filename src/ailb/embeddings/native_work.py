"""Calls into the embedding runtime (ONNX Runtime or torch) under way on daemon threads.

A process that exits while a daemon thread is inside the runtime (loading the model, encoding a batch) runs the
runtime's C++ static destructors under that thread, and the C++ runtime aborts it: "terminate called without an
active exception", SIGABRT. The ``ailb`` command asks ``under_way()`` before it exits and then leaves without
finalizing (``ailb.cli.exit_process``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_calls = 0


@contextmanager
def native_call() -> Iterator[None]:
    """Wrap a call into the runtime made on a daemon thread."""
    global _calls
    with _lock:
        _calls += 1
    try:
        yield
    finally:
        with _lock:
            _calls -= 1


def under_way() -> bool:
    return _calls > 0
