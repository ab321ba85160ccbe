"""The one seam to ChromaDB (``chroma.py``, with ``storeworker.py`` running its blocking calls) and what every
store implementation shares: ``StoreUnavailableError`` and cosine similarity (``vectors.py``)."""

from ailb.stores.errors import StoreUnavailableError

__all__ = ["StoreUnavailableError"]
