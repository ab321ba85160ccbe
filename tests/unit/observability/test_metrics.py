from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ailb.contract import Usage
from ailb.observability.metrics import Metrics
from ailb.settings import DeploymentConfig, Settings


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


def make() -> Metrics:
    return Metrics(models=["gpt-4o", "fast"], deployments=["blue", "green"])


def test_requests_are_counted_by_deployment_model_and_status() -> None:
    metrics = make()
    for status in (200, 200, 429):
        metrics.request_started()
        metrics.request_finished("gpt-4o", "blue" if status == 200 else "", status, 0.2, 0.15, None)
    assert value(metrics, "ailb_requests_total", deployment="blue", model="gpt-4o", status="200", route="chat") == 2
    assert value(metrics, "ailb_requests_total", deployment="none", model="gpt-4o", status="429", route="chat") == 1
    assert value(metrics, "ailb_active_requests") == 0
    assert value(metrics, "ailb_request_duration_seconds_count", model="gpt-4o", route="chat") == 3
    assert value(metrics, "ailb_request_duration_seconds_sum", model="gpt-4o", route="chat") == 0.2 * 3


def test_active_requests_tracks_in_flight() -> None:
    metrics = make()
    metrics.request_started()
    metrics.request_started()
    assert value(metrics, "ailb_active_requests") == 2
    metrics.request_finished("gpt-4o", "blue", 200, 0.1, 0.1, None)
    assert value(metrics, "ailb_active_requests") == 1


def test_label_values_stay_bounded() -> None:
    metrics = make()
    metrics.request_started()
    metrics.request_finished("made-up-model-from-a-user", "", 404, 0.01, 0.0, None)
    metrics.request_started()
    metrics.request_finished("gpt-4o", "someone-elses", 502, 0.01, 0.0, None)
    found = samples(metrics)
    assert value(metrics, "ailb_requests_total", deployment="none", model="other", status="404", route="chat") == 1
    assert value(metrics, "ailb_requests_total", deployment="other", model="gpt-4o", status="502", route="chat") == 1
    label_values = {v for (_, labels) in found for (_, v) in labels}
    assert "made-up-model-from-a-user" not in label_values
    assert "someone-elses" not in label_values


def test_a_served_but_unconfigured_model_keeps_its_name_up_to_a_cap() -> None:
    metrics = make()
    metrics.attempt_finished("blue", "llama3:8b", "success", 0.1, None, None, 0.0)
    assert value(metrics, "ailb_upstream_attempts_total", deployment="blue", model="llama3:8b", outcome="success") == 1
    for index in range(300):
        metrics.attempt_finished("blue", f"discovered-{index}", "success", 0.1, None, None, 0.0)
    models = {
        dict(labels).get("model") for (name, labels) in samples(metrics) if name == "ailb_upstream_attempts_total"
    }
    assert "other" in models
    assert len(models) <= 258


def test_attempts_record_tokens_cost_and_upstream_time() -> None:
    metrics = make()
    metrics.attempt_finished("green", "gpt-4o", "success", 0.5, 0.1, Usage(12, 30), 0.0042)
    metrics.attempt_finished("green", "gpt-4o", "error", 0.2, None, None, 0.0)
    metrics.attempt_finished("green", "gpt-4o", "weird", 0.2, None, None, 0.0)
    assert value(metrics, "ailb_tokens_total", deployment="green", model="gpt-4o", kind="prompt") == 12
    assert value(metrics, "ailb_tokens_total", deployment="green", model="gpt-4o", kind="completion") == 30
    assert abs(value(metrics, "ailb_cost_usd_total", deployment="green", model="gpt-4o") - 0.0042) < 1e-12
    assert value(metrics, "ailb_upstream_attempts_total", deployment="green", model="gpt-4o", outcome="error") == 1
    assert value(metrics, "ailb_upstream_attempts_total", deployment="green", model="gpt-4o", outcome="other") == 1
    assert value(metrics, "ailb_upstream_duration_seconds_count", deployment="green") == 3


def test_time_to_first_token_and_gateway_overhead() -> None:
    metrics = make()
    metrics.request_started()
    metrics.request_finished("fast", "blue", 200, 1.0, 0.9, 0.3)
    metrics.request_started()
    metrics.request_finished("fast", "blue", 200, 0.5, 0.5, None)
    assert value(metrics, "ailb_time_to_first_token_seconds_count", model="fast") == 1
    assert value(metrics, "ailb_time_to_first_token_seconds_sum", model="fast") == 0.3
    assert value(metrics, "ailb_gateway_overhead_seconds_count") == 2
    assert abs(value(metrics, "ailb_gateway_overhead_seconds_sum") - 0.1) < 1e-9
    assert value(metrics, "ailb_gateway_overhead_seconds_bucket", le="0.0002") == 1


def test_deployment_up_follows_the_router_and_reconfiguration() -> None:
    metrics = make()
    assert value(metrics, "ailb_deployment_up", deployment="blue") == 1
    metrics.deployment_up("blue", False)
    metrics.deployment_up("not-configured", False)
    assert value(metrics, "ailb_deployment_up", deployment="blue") == 0
    assert ("ailb_deployment_up", frozenset({("deployment", "not-configured")})) not in samples(metrics)
    metrics.configure(["gpt-4o"], ["green", "canary"])
    found = samples(metrics)
    assert ("ailb_deployment_up", frozenset({("deployment", "blue")})) not in found
    assert value(metrics, "ailb_deployment_up", deployment="canary") == 1


def test_retries_rate_limits_and_reloads() -> None:
    metrics = make()
    metrics.retried("blue", "gpt-4o")
    metrics.rate_limited("*")
    metrics.rate_limited("gpt-4o")
    metrics.rate_limited("garbage")
    metrics.config_reloaded(True)
    metrics.config_reloaded(False)
    assert value(metrics, "ailb_retries_total", deployment="blue", model="gpt-4o") == 1
    assert value(metrics, "ailb_rate_limited_total", route="*") == 1
    assert value(metrics, "ailb_rate_limited_total", route="gpt-4o") == 1
    assert value(metrics, "ailb_rate_limited_total", route="other") == 1
    assert value(metrics, "ailb_config_reloads_total", outcome="failure") == 1


def test_shared_state_failures_are_counted_by_a_bounded_operation() -> None:
    metrics = make()
    metrics.shared_state_failed("acquire")
    metrics.shared_state_failed("connect")
    metrics.shared_state_failed("connect")
    metrics.shared_state_failed("anything else")
    assert value(metrics, "ailb_shared_state_failures_total", operation="acquire") == 1
    assert value(metrics, "ailb_shared_state_failures_total", operation="connect") == 2
    assert value(metrics, "ailb_shared_state_failures_total", operation="other") == 1


def test_memory_and_rag_hooks() -> None:
    metrics = make()
    metrics.memory_recalled(0.02)
    metrics.memory_stored(0.03)
    metrics.memory_failed("recall")
    metrics.memory_failed("a user's text")
    metrics.memory_dropped_turn()
    metrics.rag_retrieved(0.04)
    metrics.rag_failed("retrieve")
    metrics.rag_ingested(7)
    assert value(metrics, "ailb_memory_recall_seconds_count") == 1
    assert value(metrics, "ailb_memory_store_seconds_sum") == 0.03
    assert value(metrics, "ailb_memory_failures_total", operation="recall") == 1
    assert value(metrics, "ailb_memory_failures_total", operation="other") == 1
    assert value(metrics, "ailb_memory_dropped_total") == 1
    assert value(metrics, "ailb_rag_retrieval_seconds_count") == 1
    assert value(metrics, "ailb_rag_failures_total", operation="retrieve") == 1
    assert value(metrics, "ailb_rag_chunks_ingested_total") == 7


def test_each_metrics_has_its_own_registry() -> None:
    first, second = make(), make()
    first.request_started()
    first.request_finished("gpt-4o", "blue", 200, 0.1, 0.1, None)
    assert value(first, "ailb_requests_total", deployment="blue", model="gpt-4o", status="200", route="chat") == 1
    assert value(second, "ailb_requests_total", deployment="blue", model="gpt-4o", status="200", route="chat") == 0


def test_configure_from_settings_uses_models_aliases_and_deployments() -> None:
    settings = Settings(
        deployments=(
            DeploymentConfig(name="a", provider="openai", base_url="http://127.0.0.1:1", api_key="k", models=("m1",)),
        ),
        model_aliases={"smart": ("m1",)},
    )
    metrics = Metrics()
    metrics.configure_from(settings)
    assert metrics.model_label("m1") == "m1"
    assert metrics.model_label("smart") == "smart"
    assert metrics.model_label("m2") == "other"
    assert metrics.deployment_label("a") == "a"
    assert metrics.deployment_label("") == "none"


def test_labels_follow_a_reconfiguration_and_discovery_after_the_same_label_set_was_seen() -> None:
    metrics = make()
    for _ in range(2):  # the second time from the children kept for this label set
        metrics.request_finished("new-model", "purple", 200, 0.1, 0.05, None)
        metrics.attempt_finished("purple", "new-model", "success", 0.05, None, Usage(3, 1), 0.0)
    assert value(metrics, "ailb_requests_total", deployment="other", model="new-model", status="200", route="chat") == 2
    assert value(metrics, "ailb_upstream_attempts_total", deployment="other", model="new-model", outcome="success") == 2

    metrics.request_finished("unrouted", "", 404, 0.1, 0.0, None)  # unknown and not served: "other"
    metrics.attempt_finished("blue", "unrouted", "success", 0.05, None, None, 0.0)  # now served: discovered
    metrics.request_finished("unrouted", "", 404, 0.1, 0.0, None)
    assert value(metrics, "ailb_requests_total", deployment="none", model="other", status="404", route="chat") == 1
    assert value(metrics, "ailb_requests_total", deployment="none", model="unrouted", status="404", route="chat") == 1

    metrics.configure(["gpt-4o"], ["blue", "purple"])
    metrics.request_finished("new-model", "purple", 200, 0.1, 0.05, None)
    metrics.attempt_finished("purple", "new-model", "success", 0.05, None, Usage(3, 1), 0.0)
    purple = {"deployment": "purple", "model": "new-model"}
    assert value(metrics, "ailb_requests_total", **purple, status="200", route="chat") == 1
    assert value(metrics, "ailb_upstream_attempts_total", **purple, outcome="success") == 1
