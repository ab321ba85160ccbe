"""ChromaDB operations on the memory collection. They run where the client lives (a worker process for an
embedded store, a thread for a server) through the ChromaDB seam, ``ailb.stores.chroma``, which connects,
locks, reconnects and translates failures; this module only knows the memory collection's layout.

Every read and delete filters on tenant AND session, and rows whose metadata does not match are dropped again
on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ailb.memory.models import EmbeddedTurns, SessionView, StoredTurn, Turn, document_text
from ailb.stores.chroma import ChromaConnection, similarity

T = TypeVar("T")
DELETE_BATCH = 1000
COLLECTION_METADATA = {"ailb": "memory"}


def in_collection(connection: ChromaConnection, name: str, operation: Callable[..., T], *args: Any) -> T:
    """``operation(collection, *args)`` on the memory collection ``name``, created on first use."""
    return operation(connection.get_or_create_collection(name, COLLECTION_METADATA), *args)


# --- operations: each takes the collection first ----------------------------------------------------------------
def upsert(
    collection: Any, turns: Sequence[StoredTurn], embeddings: Sequence[Sequence[float] | None], dimensions: int
) -> None:
    placeholder = [1.0] + [0.0] * (dimensions - 1)
    collection.upsert(
        ids=[t.id for t in turns],
        embeddings=[placeholder if v is None else list(v) for v in embeddings],
        documents=[document_text(t) for t in turns],
        metadatas=[_metadata(t, embedded=v is not None) for t, v in zip(turns, embeddings, strict=True)],
    )


def load_view(collection: Any, tenant: str, session_id: str, keep_recent: int, complete_limit: int) -> SessionView:
    where = _where(tenant, session_id)
    rows = collection.get(where=where, include=["metadatas"])
    entries = sorted(
        ((turn_id, meta) for turn_id, meta in zip(rows["ids"], rows["metadatas"], strict=True)
         if _belongs(meta, tenant, session_id)),
        key=lambda entry: float(entry[1].get("ts", 0.0)),
    )  # fmt: skip
    total = sum(int(meta.get("tokens", 0)) for _, meta in entries)
    complete = total <= complete_limit
    wanted = entries if complete else entries[max(0, len(entries) - keep_recent) :] if keep_recent else []
    turns: list[StoredTurn] = []
    if wanted:
        ids = [turn_id for turn_id, _ in wanted]
        turns = _stored_rows(
            collection.get(ids=ids, where=where, include=["documents", "metadatas"]), tenant, session_id
        )
    return SessionView(count=len(entries), total_tokens=total, turns=turns, complete=complete)


def similar(
    collection: Any, tenant: str, session_id: str, embedding: Sequence[float], limit: int
) -> list[tuple[StoredTurn, float]]:
    rows = collection.query(
        query_embeddings=[list(embedding)],
        n_results=limit,
        where=_where(tenant, session_id, {"embedded": {"$eq": True}}),
        include=["documents", "metadatas", "distances"],
    )
    found: list[tuple[StoredTurn, float]] = []
    for turn_id, document, meta, distance in zip(
        rows["ids"][0], rows["documents"][0], rows["metadatas"][0], rows["distances"][0], strict=True
    ):
        stored = _stored(turn_id, document, meta, tenant, session_id)
        if stored is not None:
            found.append((stored, similarity(distance)))
    return found


def session_turns(collection: Any, tenant: str, session_id: str) -> list[StoredTurn]:
    rows = collection.get(where=_where(tenant, session_id), include=["documents", "metadatas"])
    return _stored_rows(rows, tenant, session_id)


def embedded_turns(collection: Any, tenant: str, session_id: str) -> EmbeddedTurns:
    where = _where(tenant, session_id, {"embedded": {"$eq": True}})
    rows = collection.get(where=where, include=["documents", "metadatas", "embeddings"])
    vectors = np.asarray(rows["embeddings"], dtype=np.float32)
    found = [
        (stored, row)
        for row, (turn_id, document, meta) in enumerate(
            zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True)
        )
        if (stored := _stored(turn_id, document, meta, tenant, session_id)) is not None
    ]
    if not found:
        return [], np.zeros((0, 0), dtype=np.float32)
    found.sort(key=lambda pair: pair[0].turn.timestamp)
    return [stored for stored, _ in found], vectors[[row for _, row in found]]


def unembedded(collection: Any, tenant: str, session_id: str) -> list[StoredTurn]:
    where = _where(tenant, session_id, {"embedded": {"$eq": False}})
    return _stored_rows(collection.get(where=where, include=["documents", "metadatas"]), tenant, session_id)


def session_tokens(collection: Any, tenant: str, session_id: str) -> int:
    rows = collection.get(where=_where(tenant, session_id), include=["metadatas"])
    return sum(int(meta.get("tokens", 0)) for meta in rows["metadatas"] if _belongs(meta, tenant, session_id))


def delete_session(collection: Any, tenant: str, session_id: str) -> list[str]:
    return _delete(collection, _where(tenant, session_id))


def delete_older_than(collection: Any, cutoff: float) -> int:
    return len(_delete(collection, {"ts": {"$lt": cutoff}}))


def count(collection: Any) -> int:
    return int(collection.count())


def _delete(collection: Any, where: dict[str, Any]) -> list[str]:
    ids: list[str] = collection.get(where=where, include=[])["ids"]
    for start in range(0, len(ids), DELETE_BATCH):
        collection.delete(ids=ids[start : start + DELETE_BATCH], where=where)
    return ids


def _where(tenant: str, session_id: str, *more: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [{"tenant": {"$eq": tenant}}, {"session": {"$eq": session_id}}, *more]}


def _metadata(stored: StoredTurn, *, embedded: bool) -> dict[str, Any]:
    turn = stored.turn
    return {
        "tenant": turn.tenant,
        "session": turn.session_id,
        "ts": turn.timestamp,
        "tokens": stored.tokens,
        "embedded": embedded,
        "user_len": len(turn.user),
        "model": turn.model,
        "deployment": turn.deployment,
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
    }


def _belongs(meta: Any, tenant: str, session_id: str) -> bool:
    return isinstance(meta, dict) and meta.get("tenant") == tenant and meta.get("session") == session_id


def _stored(turn_id: str, document: Any, meta: Any, tenant: str, session_id: str) -> StoredTurn | None:
    if not _belongs(meta, tenant, session_id):
        return None
    text = document if isinstance(document, str) else ""
    split = int(meta.get("user_len", 0))
    turn = Turn(
        tenant=tenant,
        session_id=session_id,
        user=text[:split],
        assistant=text[split + 1 :],
        model=str(meta.get("model", "")),
        deployment=str(meta.get("deployment", "")),
        prompt_tokens=int(meta.get("prompt_tokens", 0)),
        completion_tokens=int(meta.get("completion_tokens", 0)),
        timestamp=float(meta.get("ts", 0.0)),
    )
    return StoredTurn(turn_id, turn, int(meta.get("tokens", 0)))


def _stored_rows(rows: Any, tenant: str, session_id: str) -> list[StoredTurn]:
    turns = [
        stored
        for turn_id, document, meta in zip(rows["ids"], rows["documents"], rows["metadatas"], strict=True)
        if (stored := _stored(turn_id, document, meta, tenant, session_id)) is not None
    ]
    turns.sort(key=lambda t: t.turn.timestamp)
    return turns
