"""Builds the one embedder a gateway shares between memory and RAG, as ``EMBEDDING_BACKEND`` says."""

from __future__ import annotations

from collections.abc import Mapping

from ailb.embeddings.base import Embedder
from ailb.embeddings.local import LocalEmbedder
from ailb.embeddings.models import DEFAULT_MODEL, PACKAGED_NAMES
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


def is_packaged(settings: Settings) -> bool:
    """Whether memory and RAG embed with the packaged all-MiniLM-L6-v2 (the model ``/v1/embeddings`` offers)."""
    return settings.embedding_backend == "local" and settings.embedding_model in PACKAGED_NAMES


def build_local_embedder(settings: Settings) -> Embedder:
    """The packaged all-MiniLM-L6-v2 for ``/v1/embeddings``; it loads on first use."""
    return LocalEmbedder(DEFAULT_MODEL, runtime=settings.embedding_runtime)
