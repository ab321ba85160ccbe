"""Builds the one embedder a gateway shares between memory and RAG, as ``EMBEDDING_BACKEND`` says."""

from __future__ import annotations

from collections.abc import Mapping

from ailb.embeddings.base import Embedder
from ailb.embeddings.local import LocalEmbedder
from ailb.embeddings.provider import EmbeddingsProvider, ProviderEmbedder
from ailb.settings import ConfigError, Settings


def build_embedder(settings: Settings, providers: Mapping[str, object]) -> Embedder:
    """``local``: MiniLM from the installed package; ``provider``: the ``EMBEDDING_DEPLOYMENT``'s endpoint."""
    if settings.embedding_backend == "local":
        return LocalEmbedder(settings.embedding_model, runtime=settings.embedding_runtime)
    name = settings.embedding_deployment
    if not name:
        raise ConfigError("EMBEDDING_DEPLOYMENT", "required when EMBEDDING_BACKEND=provider")
    provider = providers.get(name)
    if provider is None:
        raise ConfigError("EMBEDDING_DEPLOYMENT", f"no deployment is named {name!r}")
    if not isinstance(provider, EmbeddingsProvider):
        raise ConfigError("EMBEDDING_DEPLOYMENT", f"deployment {name!r} has no embeddings endpoint")
    return ProviderEmbedder(provider, settings.embedding_model)
