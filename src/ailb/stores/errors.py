"""The store errors shared by every store implementation (ChromaDB and in-memory alike)."""

from __future__ import annotations

from ailb.errors import AILBError


class StoreUnavailableError(AILBError):
    """A store could not answer: unreachable server, unwritable or corrupt folder, missed deadline.

    ``ailb.stores.chroma`` translates every foreign ChromaDB failure into this (or the subclass its owner
    names: memory and RAG answer with their own ``code``). The message holds the detail for the log.
    """

    status = 503
    type = "server_error"
    code = "store_unavailable"
    public_message = "The store is unavailable; try again later."


class CollectionMissing(LookupError):
    """The named collection does not exist (or was deleted by another client since it was opened).

    Raised by the ChromaDB seam; each owner decides what a missing collection means to its callers.
    """
