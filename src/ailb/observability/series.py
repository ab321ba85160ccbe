"""The metric children one request or one attempt updates, resolved once per raw label set.

``Metrics`` keeps one record per (model, deployment, status, route) of a request and per (deployment, model,
outcome) of an attempt until the next ``configure``, so a request looks its children up with one dictionary
lookup. Children only some requests update (time to first token, tokens, cost) are resolved on first use: a
label set appears in the exposition only once something was recorded under it.
"""

from __future__ import annotations

from typing import Any


class RequestSeries:
    __slots__ = ("first_token", "model_label", "requests", "seconds")

    def __init__(self, requests: Any, seconds: Any, model_label: str) -> None:
        self.requests = requests
        self.seconds = seconds
        self.model_label = model_label
        self.first_token: Any = None


class AttemptSeries:
    __slots__ = ("attempts", "completion_tokens", "cost", "deployment_label", "model_label", "prompt_tokens", "seconds")

    def __init__(self, attempts: Any, seconds: Any, deployment_label: str, model_label: str) -> None:
        self.attempts = attempts
        self.seconds = seconds
        self.deployment_label = deployment_label
        self.model_label = model_label
        self.prompt_tokens: Any = None
        self.completion_tokens: Any = None
        self.cost: Any = None
