"""Which deployments serve which public model names, aliases included.

A public name resolves to ``Target``s: (deployment, upstream model name). A model resolves to every
deployment whose ``models`` contain it; an alias to every deployment serving any of its targets (the first
target a deployment serves is the one it is asked for). An alias shadows a model of the same name.
The index is rebuilt whole and swapped in when Ollama deployments discover new models. A catalog of
``embeddings`` indexes the deployments' ``embedding_models`` instead (aliases name chat models only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ailb.contract import ModelInfo
from ailb.errors import ModelNotFoundError
from ailb.routing.deployment import Candidate, Deployment
from ailb.routing.output_caps import output_cap
from ailb.routing.routes import GLOBAL_ROUTE

MIXED_OWNER = "ailb"


@dataclass(frozen=True, slots=True)
class Target:
    deployment: Deployment
    model: str
    max_output: int  # the largest max_tokens this deployment takes for this model
    candidate: Candidate  # this target with its configured weight, made once: no override changes most requests'

    @classmethod
    def of(cls, deployment: Deployment, model: str) -> Target:
        candidate = Candidate(deployment, model, deployment.config.weight)
        return cls(deployment, model, output_cap(deployment.config, model), candidate)


class Catalog:
    def __init__(
        self, deployments: Sequence[Deployment], aliases: Mapping[str, Sequence[str]], *, embeddings: bool = False
    ) -> None:
        self._deployments = tuple(deployments)
        self.embeddings = embeddings
        self._aliases = {} if embeddings else {alias: tuple(targets) for alias, targets in aliases.items()}
        self._routes: Mapping[str, tuple[Target, ...]] = {}
        self.rebuild()

    def rebuild(self) -> None:
        routes: dict[str, list[Target]] = {}
        kind = self.embeddings
        for deployment in self._deployments:
            for name in (*deployment.served(kind), *deployment.short_names(kind)):
                upstream = deployment.upstream_model(name, kind)
                served = routes.setdefault(name, [])
                if upstream is not None and all(t.deployment is not deployment for t in served):
                    served.append(Target.of(deployment, upstream))
        for alias, names in self._aliases.items():
            routes[alias] = self._alias_targets(names)
        self._routes = {name: tuple(targets) for name, targets in routes.items()}

    def _alias_targets(self, names: Iterable[str]) -> list[Target]:
        targets: list[Target] = []
        for name in names:
            for deployment in self._deployments:
                upstream = deployment.upstream_model(name)
                if upstream is not None and all(t.deployment is not deployment for t in targets):
                    targets.append(Target.of(deployment, upstream))
        return targets

    def targets(self, name: str) -> tuple[Target, ...]:
        """Every (deployment, upstream model) that may answer ``name``; ``ModelNotFoundError`` if unknown.

        An alias whose targets no deployment serves yet (an Ollama still discovering) gives ``()``.
        """
        try:
            return self._routes[name]
        except KeyError:
            raise ModelNotFoundError(name) from None

    def has(self, name: str) -> bool:
        return name in self._routes

    def names(self) -> list[str]:
        return list(self._routes)

    def public_models(self) -> dict[str, list[str]]:
        return {name: [t.deployment.name for t in targets] for name, targets in self._routes.items()}

    def list_models(self) -> list[ModelInfo]:
        """Every model a deployment lists, then every alias; ``owned_by`` is the provider kind."""
        listed = dict.fromkeys(m for d in self._deployments for m in d.served(self.embeddings))
        listed.update(dict.fromkeys(self._aliases))
        return [self._model_info(name) for name in listed if name in self._routes]

    def _model_info(self, name: str) -> ModelInfo:
        targets = self._routes[name]
        kinds = {t.deployment.config.provider for t in targets}
        owner = kinds.pop() if len(kinds) == 1 else MIXED_OWNER
        return ModelInfo(id=name, owned_by=owner, extra={"deployments": [t.deployment.name for t in targets]})

    def serving(self, route: str) -> dict[str, float]:
        """Deployment name → configured weight, for a route (a public name, or ``*`` for all deployments)."""
        if route == GLOBAL_ROUTE:
            return {d.name: d.config.weight for d in self._deployments}
        return {t.deployment.name: t.deployment.config.weight for t in self.targets(route)}
