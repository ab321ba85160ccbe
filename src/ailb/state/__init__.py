"""Shared state behind one seam: the ``LimitStore`` and ``ControlState`` protocols, kept in this process or,
with ``REDIS_URL``, on Redis for a fleet (``build_shared_state``). Only this package imports ``redis``."""

from ailb.state.base import Draw, Ledger, LimitStore, Refusal, Reservation, Settlement, SharedStateUnavailable
from ailb.state.control import ControlSnapshot, ControlState, LocalControlState
from ailb.state.journal import JournalError, SpendJournal
from ailb.state.memory import InProcessLimitStore
from ailb.state.shared import SharedState, build_shared_state

__all__ = [
    "ControlSnapshot",
    "ControlState",
    "Draw",
    "InProcessLimitStore",
    "JournalError",
    "Ledger",
    "LimitStore",
    "LocalControlState",
    "Refusal",
    "Reservation",
    "Settlement",
    "SharedState",
    "SharedStateUnavailable",
    "SpendJournal",
    "build_shared_state",
]
