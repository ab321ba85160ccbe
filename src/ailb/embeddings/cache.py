"""A bounded least-recently-used cache of vectors by text (or token ids, …), stored compactly as float32."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt


class VectorCache:
    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Hashable, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: Hashable) -> list[float] | None:
        with self._lock:
            vector = self._items.get(text)
            if vector is None:
                self.misses += 1
                return None
            self._items.move_to_end(text)
            self.hits += 1
        return vector.tolist()  # type: ignore[no-any-return]

    def put(self, text: Hashable, vector: Sequence[float]) -> None:
        if self.capacity <= 0:
            return
        compact = np.asarray(vector, dtype=np.float32)
        with self._lock:
            self._items[text] = compact
            self._items.move_to_end(text)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
