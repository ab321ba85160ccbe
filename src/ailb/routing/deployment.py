"""A deployment as the router sees it: configuration, provider, live stats, circuit and load."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ailb.immutable import immutable
from ailb.providers.base import Provider
from ailb.redaction import Redactor
from ailb.routing.circuit import CircuitBreaker, CircuitPolicy
from ailb.routing.stats import DeploymentStats
from ailb.settings import DeploymentConfig


class Deployment:
    def __init__(
        self,
        config: DeploymentConfig,
        provider: Provider,
        policy: CircuitPolicy,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.provider = provider
        self.name = config.name
        self.circuit = CircuitBreaker(policy, clock)
        self.stats = DeploymentStats()
        self.in_flight = 0
        self.misconfigured_status: int | None = None  # the upstream's 401/403 until a request succeeds again
        self.discovers_models = config.kind.discovers_models and not config.models
        self._implicit_tag = config.kind.implicit_tag
        self._redactor = Redactor([config.api_key])
        self.models: tuple[str, ...] = config.models
        self.embedding_models: tuple[str, ...] = config.embedding_models

    @property
    def up(self) -> bool:
        return self.circuit.up

    @property
    def at_capacity(self) -> bool:
        limit = self.config.max_concurrency
        return limit is not None and self.in_flight >= limit

    def served(self, embeddings: bool = False) -> tuple[str, ...]:
        """The chat models, or with ``embeddings`` the embedding models, this deployment serves."""
        return self.embedding_models if embeddings else self.models

    def upstream_model(self, model: str, embeddings: bool = False) -> str | None:
        """The name to send upstream for ``model``, or ``None`` if this deployment does not serve it.

        Ollama answers to ``llama3`` for a model it lists as ``llama3:latest`` (its kind's implicit tag).
        """
        served = self.served(embeddings)
        if model in served:
            return model
        tagged = f"{model}{self._implicit_tag}"
        if self._implicit_tag and ":" not in model and tagged in served:
            return tagged
        return None

    def short_names(self, embeddings: bool = False) -> Iterable[str]:
        """Extra public names: ``llama3`` for an Ollama ``llama3:latest``."""
        tag = self._implicit_tag
        if not tag:
            return ()
        return (m.removesuffix(tag) for m in self.served(embeddings) if m.endswith(tag))

    def set_models(self, models: Iterable[str]) -> bool:
        """Replace discovered models (the declared embedding models are not chat models); ``True`` when the set
        changed."""
        tag = self._implicit_tag
        embedding = {*self.embedding_models, *(f"{m}{tag}" for m in self.embedding_models if tag and ":" not in m)}
        found = tuple(dict.fromkeys(m for m in models if m and m not in embedding))
        if found == self.models:
            return False
        self.models = found
        return True

    def redact(self, message: str) -> str:
        """``message`` without this deployment's key or anything shaped like a credential."""
        return self._redactor(message)

    def adopt(self, old: Deployment) -> None:
        """Keep live stats across a configuration reload of the same name, and the circuit's state too unless
        the reload changed how the upstream is reached (a fixed key deserves a fresh chance)."""
        self.stats = old.stats
        if _connection(old.config) == _connection(self.config):
            self.circuit.adopt(old.circuit)
            self.misconfigured_status = old.misconfigured_status
        if self.discovers_models and old.discovers_models:
            self.models = old.models


def _connection(config: DeploymentConfig) -> tuple[str, str, str]:
    return config.provider, config.base_url, config.api_key


@immutable
class Candidate:
    """A deployment that may take this request, the upstream model name to use and its effective weight."""

    deployment: Deployment
    model: str
    weight: float

    @property
    def name(self) -> str:
        return self.deployment.name
