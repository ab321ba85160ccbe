"""The values memory works with: a turn as the service hands it over, as stored, and what recall returns."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ailb.contract import SessionId
from ailb.token_estimate import estimate_tokens  # the chat model's tokenizer is upstream: budgets are estimates

TURN_OVERHEAD_TOKENS = 8


@dataclass(frozen=True, slots=True)
class Turn:
    """One completed exchange: the user's message and the assistant's whole reply."""

    tenant: str
    session_id: str
    user: str
    assistant: str
    model: str = ""
    deployment: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """A turn with its id and its estimated size in prompt tokens."""

    id: str
    turn: Turn
    tokens: int

    @classmethod
    def of(cls, turn: Turn) -> StoredTurn:
        turn_id = f"{session_key(turn.tenant, turn.session_id)}-{int(turn.timestamp * 1e6)}-{uuid.uuid4().hex[:8]}"
        return cls(turn_id, turn, estimate_tokens(turn.user) + estimate_tokens(turn.assistant) + TURN_OVERHEAD_TOKENS)

    @property
    def key(self) -> tuple[str, str]:
        return (self.turn.tenant, self.turn.session_id)

    @property
    def timestamp(self) -> float:
        return self.turn.timestamp

    def public(self) -> dict[str, Any]:
        t = self.turn
        return {
            "id": self.id,
            "user": t.user,
            "assistant": t.assistant,
            "model": t.model,
            "deployment": t.deployment,
            "prompt_tokens": t.prompt_tokens,
            "completion_tokens": t.completion_tokens,
            "timestamp": t.timestamp,
        }


# A session's embedded turns, oldest first, and their vectors: row i belongs to turn i.
EmbeddedTurns = tuple[list[StoredTurn], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class Recall:
    """``message`` is the one delimited system message to inject (or None); ``turns`` how many it holds."""

    message: dict[str, Any] | None
    turns: int


EMPTY_RECALL = Recall(None, 0)


@dataclass(slots=True)
class SessionView:
    """What is known of one stored session: all its turns while small, else only its newest.

    ``turns`` are oldest first. ``complete`` says ``turns`` is the whole session.
    """

    count: int
    total_tokens: int
    turns: list[StoredTurn]
    complete: bool

    @property
    def held_tokens(self) -> int:
        return sum(t.tokens for t in self.turns)

    def add(self, stored: StoredTurn, keep_recent: int, complete_limit: int) -> None:
        if any(t.id == stored.id for t in self.turns):
            return
        self.count += 1
        self.total_tokens += stored.tokens
        self.turns.append(stored)
        self.turns.sort(key=_by_time)
        if not self.complete or self.total_tokens > complete_limit:
            self.complete = False
            del self.turns[: max(0, len(self.turns) - keep_recent)]


def _by_time(stored: StoredTurn) -> float:
    return stored.turn.timestamp


def session_key(tenant: str, session_id: str) -> str:
    """An opaque, fixed-length prefix for the ids of a session's turns."""
    return hashlib.sha256(f"{tenant}\x1f{session_id}".encode()).hexdigest()[:20]


def document_text(stored: StoredTurn) -> str:
    """The text a turn is stored and embedded as: the user's message, a newline, the reply."""
    return f"{stored.turn.user}\n{stored.turn.assistant}"


class MemoryObserver(Protocol):
    """Where memory reports its timings and failures (``ailb.observability.Metrics`` is one)."""

    def memory_recalled(self, seconds: float) -> None: ...
    def memory_stored(self, seconds: float) -> None: ...
    def memory_failed(self, operation: str) -> None: ...
    def memory_dropped_turn(self) -> None: ...


def check_session_id(session_id: str) -> SessionId:
    """A session id from a caller of the memory API; one that came in with a chat request is checked already."""
    return SessionId.check(session_id, code="invalid_session_id")
