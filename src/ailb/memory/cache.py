"""A bounded LRU of session views, so a session's recent turns are read from the store once, not per request.

Bounded twice: by sessions and by the (estimated) tokens of text held. Views are kept current by the writer
(``add``) and by deletes (``invalidate``). A load that was in flight while its session changed is used for
that one request but not cached.
"""

from __future__ import annotations

from collections import OrderedDict

from ailb.memory.models import SessionView, StoredTurn

Key = tuple[str, str]


class SessionCache:
    def __init__(self, capacity: int, keep_recent: int, complete_limit: int, max_tokens: int = 2_000_000) -> None:
        self.capacity = capacity
        self.keep_recent = keep_recent
        self.complete_limit = complete_limit
        self.max_tokens = max_tokens
        self.held_tokens = 0
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
            self.invalidate(key)
            self._views[key] = view
            self.held_tokens += view.held_tokens
            self._evict()

    def add(self, stored: StoredTurn) -> None:
        key = stored.key
        self._loads.pop(key, None)
        view = self._views.get(key)
        if view is not None:
            before = view.held_tokens
            view.add(stored, self.keep_recent, self.complete_limit)
            self.held_tokens += view.held_tokens - before
            self._evict()

    def invalidate(self, key: Key) -> None:
        self._loads.pop(key, None)
        view = self._views.pop(key, None)
        if view is not None:
            self.held_tokens -= view.held_tokens

    def clear(self) -> None:
        self._loads.clear()
        self._views.clear()
        self.held_tokens = 0

    def _evict(self) -> None:
        while self._views and (len(self._views) > self.capacity or self.held_tokens > self.max_tokens):
            _, view = self._views.popitem(last=False)
            self.held_tokens -= view.held_tokens

    def __len__(self) -> int:
        return len(self._views)
