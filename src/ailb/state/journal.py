"""Per-key spend kept across restarts of one process: a small SQLite file (``SPEND_PATH``).

One row per ledger (key name and budget period) with its absolute sums, so writing a row twice is harmless
and a batch is one transaction. Every method blocks: callers run them in a worker thread. The file is locked
(``<file>.lock``) while open, so two processes never count into one file; a fleet shares spend through Redis.
"""

from __future__ import annotations

import fcntl
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledgers (
    name TEXT PRIMARY KEY,
    spent_usd REAL NOT NULL,
    requests INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    expires_at REAL NOT NULL
)
"""
_UPSERT = (
    "INSERT INTO ledgers VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET spent_usd = excluded.spent_usd, "
    "requests = excluded.requests, prompt_tokens = excluded.prompt_tokens, "
    "completion_tokens = excluded.completion_tokens, expires_at = excluded.expires_at"
)


class JournalError(Exception):
    """The spend file cannot be used (the message says why; it names no secret)."""


@dataclass(frozen=True, slots=True)
class LedgerRow:
    name: str
    spent_usd: float
    requests: int
    prompt_tokens: int
    completion_tokens: int
    expires_at: float


class SpendJournal:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock: IO[str] | None = None

    def open(self, now: float) -> list[LedgerRow]:
        """Lock and open the file (created when missing) and return the ledgers of periods not over yet."""
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(self.path + ".lock")
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.execute("DELETE FROM ledgers WHERE expires_at < ?", (now,))
            rows = self._db.execute("SELECT * FROM ledgers").fetchall()
        except (OSError, sqlite3.Error, JournalError) as exc:
            self.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise JournalError(f"cannot use {self.path}: {reason}") from None
        return [LedgerRow(*row) for row in rows]

    def write(self, rows: list[LedgerRow], now: float) -> None:
        if self._db is None:
            return
        with self._db:  # one transaction per batch
            self._db.execute("BEGIN")
            self._db.executemany(_UPSERT, [_values(row) for row in rows])
            self._db.execute("DELETE FROM ledgers WHERE expires_at < ?", (now,))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _values(row: LedgerRow) -> tuple[str, float, int, int, int, float]:
    return (row.name, row.spent_usd, row.requests, row.prompt_tokens, row.completion_tokens, row.expires_at)


def _lock(path: str) -> IO[str]:
    handle = open(path, "a")  # held open (and locked) until close()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise JournalError(
            "another AILB process is using this file; give each process its own SPEND_PATH "
            "(or SPEND_PATH=none to keep spend in memory)"
        ) from None
    return handle
