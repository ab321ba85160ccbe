"""Conversation memory: turns stored per (tenant, session) in ChromaDB, recalled within a token budget."""

from ailb.memory.models import Recall, StoredTurn, Turn
from ailb.memory.service import MemoryService, check_session_id
from ailb.memory.store import MemoryStoreError

__all__ = ["MemoryService", "MemoryStoreError", "Recall", "StoredTurn", "Turn", "check_session_id"]
