"""A bounded LRU of session views, so a session's recent turns are read from the store once, not per request.

Views are kept current by the writer (``add``) and by deletes (``invalidate``). A load that was in flight
while its session changed is used for that one request but not cached.
"""

from __future__ import annotations

from collections import OrderedDict

from ailb.memory.models import SessionView, StoredTurn

Key = tuple[str, str]


class SessionCache:
    def __init__(self, capacity: int, keep_recent: int, complete_limit: int) -> None:
        self.capacity = capacity
        self.keep_recent = keep_recent
        self.complete_limit = complete_limit
        self._views: OrderedDict[Key, SessionView] = OrderedDict()
        self._loads: dict[Key, object] = {}

    def get(self, key: Key) -> SessionView | None:
        view = self._views.get(key)
        if view is not None:
            self._views.move_to_end(key)
        return view

    def begin_load(self, key: Key) -> object:
        token = object()
        self._loads[key] = token
        return token

    def finish_load(self, key: Key, token: object, view: SessionView | None) -> None:
        """Cache ``view`` unless the session changed while it was loading (or the load failed: None)."""
        if self._loads.get(key) is not token:
            return
        del self._loads[key]
        if view is not None and self.capacity > 0:
            self._views[key] = view
            self._views.move_to_end(key)
            while len(self._views) > self.capacity:
                self._views.popitem(last=False)

    def add(self, stored: StoredTurn) -> None:
        key = stored.key
        self._loads.pop(key, None)
        view = self._views.get(key)
        if view is not None:
            view.add(stored, self.keep_recent, self.complete_limit)

    def invalidate(self, key: Key) -> None:
        self._loads.pop(key, None)
        self._views.pop(key, None)

    def clear(self) -> None:
        self._loads.clear()
        self._views.clear()

    def __len__(self) -> int:
        return len(self._views)
