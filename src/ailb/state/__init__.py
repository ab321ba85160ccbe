"""Shared state behind one seam: the ``LimitStore`` protocol and its in-process implementation."""

from ailb.state.base import Draw, Ledger, LimitStore, Refusal, Reservation, Settlement
from ailb.state.journal import JournalError, SpendJournal
from ailb.state.memory import InProcessLimitStore

__all__ = [
    "Draw",
    "InProcessLimitStore",
    "JournalError",
    "Ledger",
    "LimitStore",
    "Refusal",
    "Reservation",
    "Settlement",
    "SpendJournal",
]
