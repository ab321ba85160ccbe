"""Embeddings: local MiniLM (from the installed model package) and provider endpoints behind one interface."""

from ailb.embeddings.base import Embedder, EmbeddingError

__all__ = ["Embedder", "EmbeddingError"]
