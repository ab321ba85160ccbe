"""Every Prometheus metric AILB exports, with its labels, in one place.

Label values are bounded: ``model`` is a configured model or alias (or one the router actually served, e.g.
discovered from Ollama, up to ``MAX_DISCOVERED_MODELS``), else ``other``; ``deployment`` is a configured
deployment, ``none`` when no deployment was reached, else ``other``; ``key`` is the ``name`` of a client key
from ``client_keys`` (its tenant hash when it has none). No raw path, user input or key is ever a
label value. Each ``Metrics`` owns its ``CollectorRegistry``, so tests and reloads never collide.

With ``ailb serve --workers N`` every worker process writes its values to files the parent gives them
(``observability/multiprocess.py``: the Prometheus client's multiprocess mode), and ``render`` on any worker
reads all of them: counters and histograms are summed over the workers, ``ailb_active_requests`` too (live
workers only), and ``ailb_deployment_up`` is the lowest any live worker reports.
In one process the families every request updates are plain numbers the scrape turns into the same
exposition (``observability/plain_metrics.py``: no lock per update).

``Metrics`` is the router's ``RouteObserver`` and the HTTP layer's request hook, and keeps the live
figures the gRPC ``GetMetrics`` call reports (see ``ailb.observability.stats``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ailb.contract import Usage
from ailb.observability import multiprocess
from ailb.observability.plain_metrics import PlainCounter, PlainHistogram
from ailb.observability.series import AttemptSeries, RequestSeries
from ailb.observability.stats import RequestStats, StatsSnapshot
from ailb.routing.routes import GLOBAL_ROUTE
from ailb.settings import Settings

OTHER = "other"
NO_DEPLOYMENT = "none"
MAX_DISCOVERED_MODELS = 256
ATTEMPT_OUTCOMES = frozenset({"success", "error", "client_error"})
MEMORY_OPERATIONS = frozenset({"recall", "store", "list", "delete", "expire"})
RAG_OPERATIONS = frozenset({"retrieve", "ingest", "delete", "list"})
KEY_REJECTION_REASONS = frozenset({"model", "rpm", "tpm", "budget"})
# The API surfaces, as the ``route`` label of request metrics.
ROUTES = frozenset({"chat", "responses", "messages", "count_tokens", "embeddings", "completions"})
LOCAL_EMBEDDINGS = ("all-MiniLM-L6-v2", "local")  # the packaged embedding model and its deployment label
SHARED_STATE_OPERATIONS = frozenset({"acquire", "settle", "ledger", "control", "subscribe", "connect"})

REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
STORE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


# Raw label sets whose resolved children are kept (each set's labels are bounded; the raw values may not be).
MAX_CACHED_LABEL_SETS = 4096


class Metrics:
    def __init__(
        self,
        models: Iterable[str] = (),
        deployments: Iterable[str] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # Per raw label set, the children one request or attempt updates (labels resolved once, until configure).
        self._request_series: dict[tuple[str, str, int, str], RequestSeries] = {}
        self._attempt_series: dict[tuple[str, str, str], AttemptSeries] = {}
        self.stats = RequestStats(clock=clock, wall_clock=wall_clock)
        self._lock = threading.Lock()
        self._models: frozenset[str] = frozenset()
        self._discovered: set[str] = set()
        self._deployments: frozenset[str] = frozenset()
        self._local: frozenset[str] = frozenset()  # the packaged embedding model's pseudo-deployment, when offered
        # One process: the per-request families are plain numbers (``plain_metrics``); several workers: the
        # client's own objects, whose values live in the files every worker's scrape reads.
        self._shared = multiprocess.active()
        self._counter: Any = Counter if self._shared else PlainCounter
        self._histogram: Any = Histogram if self._shared else PlainHistogram
        self._define_requests(self.registry)
        # One process: the in-flight gauge reads the count the request statistics keep anyway (no second count
        # per request). Several workers: each adds its own to the shared files, which a scrape sums.
        if not self._shared:
            self.active.set_function(self.stats.in_flight)
        self._define_upstreams(self.registry)
        self._define_stores(self.registry)
        self._define_governance(self.registry)
        self.configure(models, deployments)

    def _define_requests(self, r: CollectorRegistry) -> None:
        self.requests = self._counter(
            "ailb_requests",
            "API requests answered, by HTTP status and API surface",
            ["deployment", "model", "status", "route"],
            registry=r,
        )
        self.request_seconds = self._histogram(
            "ailb_request_duration_seconds",
            "Whole request time as the client saw it",
            ["model", "route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.first_token_seconds = self._histogram(
            "ailb_time_to_first_token_seconds",
            "Time to the first streamed byte sent to the client",
            ["model"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.overhead_seconds = self._histogram(
            "ailb_gateway_overhead_seconds",
            "Time spent in AILB itself, excluding the upstream",
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self._overhead = self.overhead_seconds if self._shared else self.overhead_seconds.labels()
        self.active = Gauge("ailb_active_requests", "Chat requests in flight", registry=r, multiprocess_mode="livesum")

    def _define_upstreams(self, r: CollectorRegistry) -> None:
        self.attempts = self._counter(
            "ailb_upstream_attempts",
            "Attempts at a deployment, by outcome",
            ["deployment", "model", "outcome"],
            registry=r,
        )
        self.upstream_seconds = self._histogram(
            "ailb_upstream_duration_seconds",
            "Duration of one attempt at a deployment",
            ["deployment"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.tokens = self._counter(
            "ailb_tokens", "Tokens reported by the upstream", ["deployment", "model", "kind"], registry=r
        )
        self.cost = self._counter("ailb_cost_usd", "Estimated spend in US dollars", ["deployment", "model"], registry=r)
        self.deployment_up_gauge = Gauge(
            "ailb_deployment_up",
            "1 when the deployment's circuit lets requests through",
            ["deployment"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.retries = self._counter(
            "ailb_retries", "Attempts retried elsewhere after a failure", ["deployment", "model"], registry=r
        )
        self.rate_limited_count = Counter(
            "ailb_rate_limited", "Requests refused by the gateway's own rate limits", ["route"], registry=r
        )

    def _define_stores(self, r: CollectorRegistry) -> None:
        self.memory_recall_seconds = Histogram(
            "ailb_memory_recall_seconds", "Conversation memory recall time", buckets=STORE_BUCKETS, registry=r
        )
        self.memory_store_seconds = Histogram(
            "ailb_memory_store_seconds", "Conversation memory write time", buckets=STORE_BUCKETS, registry=r
        )
        self.memory_failures = Counter(
            "ailb_memory_failures", "Conversation memory operations that failed", ["operation"], registry=r
        )
        self.memory_dropped = Counter(
            "ailb_memory_dropped", "Turns not remembered because the write queue was full", registry=r
        )
        self.rag_retrieval_seconds = Histogram(
            "ailb_rag_retrieval_seconds", "Knowledge base retrieval time", buckets=STORE_BUCKETS, registry=r
        )
        self.rag_failures = Counter("ailb_rag_failures", "RAG operations that failed", ["operation"], registry=r)
        self.rag_chunks_ingested = Counter("ailb_rag_chunks_ingested", "Chunks added to knowledge bases", registry=r)

    def _define_governance(self, r: CollectorRegistry) -> None:
        self.reloads = Counter("ailb_config_reloads", "Configuration reloads, by outcome", ["outcome"], registry=r)
        self.key_spend = Counter(
            "ailb_key_spend_usd", "Spend of metered client keys in US dollars, by the key's name", ["key"], registry=r
        )
        self.key_rejections = Counter(
            "ailb_key_rejections", "Requests refused by a client key's own limits", ["key", "reason"], registry=r
        )
        self.shared_state_failures = Counter(
            "ailb_shared_state_failures",
            "Calls to the shared state (Redis) that failed, by operation",
            ["operation"],
            registry=r,
        )

    # --- label sets
    def configure(self, models: Iterable[str], deployments: Iterable[str]) -> None:
        """Set the label values allowed for ``model`` and ``deployment`` (at start-up and after a reload)."""
        new_deployments = frozenset(deployments)
        with self._lock:
            self._models = frozenset(models)
            self._discovered.clear()
            self._request_series.clear()
            self._attempt_series.clear()
            for gone in self._deployments - new_deployments:
                self.deployment_up_gauge.labels(gone).set(0)  # what other workers read until they reload too
                self.deployment_up_gauge.remove(gone)
            for added in new_deployments - self._deployments:
                self.deployment_up_gauge.labels(added).set(1)
            self._deployments = new_deployments

    def configure_from(self, settings: Settings) -> None:
        models = {m for d in settings.deployments for m in (*d.models, *d.embedding_models)}
        model, deployment = LOCAL_EMBEDDINGS
        if settings.local_embeddings:
            models.add(model)
        self._local = frozenset({deployment} if settings.local_embeddings else ())
        self.configure(models | set(settings.model_aliases), (d.name for d in settings.deployments))

    def model_label(self, model: str, served: bool = False) -> str:
        """``served`` marks a model the router resolved, so it is a real model even if it was discovered."""
        if model in self._models or model in self._discovered:
            return model
        if served and model:
            with self._lock:
                if len(self._discovered) < MAX_DISCOVERED_MODELS:
                    self._discovered.add(model)
                    return model
        return OTHER

    def deployment_label(self, deployment: str) -> str:
        if not deployment:
            return NO_DEPLOYMENT
        return deployment if deployment in self._deployments or deployment in self._local else OTHER

    # --- HTTP layer
    def request_started(self) -> None:
        if self._shared:
            self.active.inc()
        self.stats.started()

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (label values are bounded)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request_finished(
        self,
        model: str,
        deployment: str,
        status: int,
        seconds: float,
        upstream_seconds: float,
        ttft_seconds: float | None,
        route: str = "chat",
    ) -> None:
        """``route``: the API surface (``chat``, ``responses``, ``messages``, ``count_tokens``, ``embeddings``,
        ``completions``)."""
        series = self._request_series.get((model, deployment, status, route))
        if series is None:
            series = self._new_request_series(model, deployment, status, route)
        if self._shared:
            self.active.dec()
        series.requests.inc()
        series.seconds.observe(seconds)
        if ttft_seconds is not None:
            if series.first_token is None:
                series.first_token = self._child(self.first_token_seconds, series.model_label)
            series.first_token.observe(ttft_seconds)
        overhead = seconds - upstream_seconds
        self._overhead.observe(overhead if overhead > 0.0 else 0.0)
        self.stats.finished(series.model_label, status, seconds, bool(deployment))

    def _new_request_series(self, model: str, deployment: str, status: int, route: str) -> RequestSeries:
        model_label = self.model_label(model, served=bool(deployment))
        route_label = route if route in ROUTES else OTHER
        series = RequestSeries(
            self._child(self.requests, self.deployment_label(deployment), model_label, str(status), route_label),
            self._child(self.request_seconds, model_label, route_label),
            model_label,
        )
        # An unknown model's label may change once the router serves it (discovery): only known ones are kept.
        if model_label == model and len(self._request_series) < MAX_CACHED_LABEL_SETS:
            self._request_series[(model, deployment, status, route)] = series
        return series

    def rate_limited(self, route: str) -> None:
        label = route if route == GLOBAL_ROUTE else self.model_label(route)
        self.rate_limited_count.labels(label).inc()

    def snapshot(self) -> StatsSnapshot:
        return self.stats.snapshot()

    # --- router (RouteObserver)
    def attempt_finished(
        self,
        deployment: str,
        model: str,
        outcome: str,
        seconds: float,
        ttft_seconds: float | None,
        usage: Usage | None,
        cost_usd: float,
    ) -> None:
        series = self._attempt_series.get((deployment, model, outcome))
        if series is None:
            series = self._new_attempt_series(deployment, model, outcome)
        series.attempts.inc()
        series.seconds.observe(seconds)
        if usage is not None:
            if series.prompt_tokens is None:
                labels = (series.deployment_label, series.model_label)
                series.prompt_tokens = self._child(self.tokens, *labels, "prompt")
                series.completion_tokens = self._child(self.tokens, *labels, "completion")
            series.prompt_tokens.inc(usage.prompt_tokens)
            series.completion_tokens.inc(usage.completion_tokens)
        if cost_usd > 0:
            if series.cost is None:
                series.cost = self._child(self.cost, series.deployment_label, series.model_label)
            series.cost.inc(cost_usd)

    def _new_attempt_series(self, deployment: str, model: str, outcome: str) -> AttemptSeries:
        deployment_label = self.deployment_label(deployment)
        model_label = self.model_label(model, served=True)
        outcome_label = outcome if outcome in ATTEMPT_OUTCOMES else OTHER
        series = AttemptSeries(
            self._child(self.attempts, deployment_label, model_label, outcome_label),
            self._child(self.upstream_seconds, deployment_label),
            deployment_label,
            model_label,
        )
        if len(self._attempt_series) < MAX_CACHED_LABEL_SETS:
            self._attempt_series[(deployment, model, outcome)] = series
        return series

    def retried(self, deployment: str, model: str) -> None:
        self.retries.labels(self.deployment_label(deployment), self.model_label(model, served=True)).inc()

    def deployment_up(self, deployment: str, up: bool) -> None:
        if deployment in self._deployments:
            self.deployment_up_gauge.labels(deployment).set(1 if up else 0)

    # --- memory and RAG
    def memory_recalled(self, seconds: float) -> None:
        self.memory_recall_seconds.observe(seconds)

    def memory_stored(self, seconds: float) -> None:
        self.memory_store_seconds.observe(seconds)

    def memory_failed(self, operation: str) -> None:
        self.memory_failures.labels(operation if operation in MEMORY_OPERATIONS else OTHER).inc()

    def memory_dropped_turn(self) -> None:
        self.memory_dropped.inc()

    def rag_retrieved(self, seconds: float) -> None:
        self.rag_retrieval_seconds.observe(seconds)

    def rag_failed(self, operation: str) -> None:
        self.rag_failures.labels(operation if operation in RAG_OPERATIONS else OTHER).inc()

    def rag_ingested(self, chunks: int) -> None:
        self.rag_chunks_ingested.inc(chunks)

    # --- per-key governance (``key`` is the name configured in ``client_keys``, never the key)
    def key_spent(self, key: str, usd: float) -> None:
        if usd > 0:
            self._child(self.key_spend, key).inc(usd)

    def key_rejected(self, key: str, reason: str) -> None:
        self._child(self.key_rejections, key, reason if reason in KEY_REJECTION_REASONS else OTHER).inc()

    # --- shared state (Redis)
    def shared_state_failed(self, operation: str) -> None:
        self._child(self.shared_state_failures, operation if operation in SHARED_STATE_OPERATIONS else OTHER).inc()

    # --- control plane
    def config_reloaded(self, success: bool) -> None:
        self.reloads.labels("success" if success else "failure").inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric (summed over the workers), and its content type."""
        if multiprocess.active():
            return multiprocess.render_all(), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
