"""The new surfaces as full citizens: client keys (``x-api-key`` or Bearer), model scopes, per-key rpm, route rate
limits, body limits, the ``x-ailb-*`` headers, metrics labelled by route, and redaction — each answered in that
surface's own error shape."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import Fault, Reply
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import (
    EMBEDDING_MODELS,
    MODELS,
    anthropic_client,
    openai_client,
    sent,
    surface_fixtures,
)
from tests.integration.upstreams import ANTHROPIC_KEY, OPENAI_KEY, Upstreams

FULL_KEY = "client-key-full-000001"
SCOPED_KEY = "client-key-scoped-0002"
LIMITED = {
    surface: f"client-key-limited-{surface}" for surface in ("responses", "messages", "completions", "embeddings")
}
KEYS = f"""
client_keys:
  {FULL_KEY}: {{name: full}}
  {SCOPED_KEY}: {{name: scoped, models: [gpt-4o-mini, text-embedding-3-small]}}
""" + "".join(f"  {key}: {{name: limited-{surface}, rpm: 2}}\n" for surface, key in LIMITED.items())
LIMIT = 64 * 1024
HI: Any = [{"role": "user", "content": "hi"}]


running, upstreams, gateway = surface_fixtures("gov", KEYS, MAX_REQUEST_BYTES=str(LIMIT))


# One small request per surface: (path, body, "openai" or "anthropic" error shape).
SURFACES: dict[str, tuple[str, dict[str, Any], str]] = {
    "responses": ("/v1/responses", {"model": MODELS["openai"], "input": "hi"}, "openai"),
    "messages": ("/v1/messages", {"model": MODELS["openai"], "max_tokens": 16, "messages": HI}, "anthropic"),
    "count_tokens": ("/v1/messages/count_tokens", {"model": MODELS["openai"], "messages": HI}, "anthropic"),
    "completions": ("/v1/completions", {"model": MODELS["openai"], "prompt": "hi"}, "openai"),
    "embeddings": ("/v1/embeddings", {"model": EMBEDDING_MODELS["openai"], "input": "hi"}, "openai"),
}


def post(gateway: RunningGateway, surface: str, key: str | None = FULL_KEY, **changes: Any) -> httpx.Response:
    path, body, _shape = SURFACES[surface]
    headers = {"x-api-key": key} if key else {}
    return httpx.post(gateway.url + path, json={**body, **changes}, headers=headers, timeout=30)


def error_of(surface: str, response: httpx.Response) -> tuple[int, str]:
    """(status, error type) in the surface's own shape (asserting the shape)."""
    body = response.json()
    if SURFACES[surface][2] == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        return response.status_code, body["error"]["type"]
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize("surface", list(SURFACES))
def test_keys_are_required_and_answered_in_the_surfaces_shape(gateway: RunningGateway, surface: str) -> None:
    missing = error_of(surface, post(gateway, surface, key=None))
    wrong = error_of(surface, post(gateway, surface, key="not-a-key-at-all"))
    if SURFACES[surface][2] == "anthropic":
        assert missing == wrong == (401, "authentication_error")
    else:
        assert missing == (401, "missing_api_key") and wrong == (401, "invalid_api_key")
    assert post(gateway, surface).status_code == 200


def test_the_sdks_send_their_keys_their_way(gateway: RunningGateway, upstreams: Upstreams) -> None:
    assert anthropic_client(gateway, FULL_KEY).messages.create(model=MODELS["openai"], max_tokens=8, messages=HI).id
    bearer = anthropic.Anthropic(base_url=gateway.url, auth_token=FULL_KEY, max_retries=0)
    assert bearer.messages.create(model=MODELS["openai"], max_tokens=8, messages=HI).id
    assert openai_client(gateway, FULL_KEY).responses.create(model=MODELS["openai"], input="hi").id
    received = upstreams.openai.chat_requests[-1].headers
    assert received["Authorization"] == f"Bearer {OPENAI_KEY}"  # the deployment's key, never the client's


@pytest.mark.parametrize("surface", list(SURFACES))
def test_a_key_limited_to_some_models(gateway: RunningGateway, surface: str) -> None:
    assert post(gateway, surface, key=SCOPED_KEY).status_code == 200
    refused = post(gateway, surface, key=SCOPED_KEY, model=MODELS["anthropic"])
    if surface == "embeddings":
        refused = post(gateway, surface, key=SCOPED_KEY, model=EMBEDDING_MODELS["ollama"])
    expected = "not_found_error" if SURFACES[surface][2] == "anthropic" else "model_not_found"
    assert error_of(surface, refused) == (404, expected)
    listed = {m.id for m in openai_client(gateway, SCOPED_KEY).models.list().data}
    assert listed == {MODELS["openai"], EMBEDDING_MODELS["openai"]}


@pytest.mark.parametrize("surface", ["responses", "messages", "completions", "embeddings"])
def test_a_keys_rpm(gateway: RunningGateway, surface: str) -> None:
    answers = [post(gateway, surface, key=LIMITED[surface]) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    expected = "rate_limit_error" if SURFACES[surface][2] == "anthropic" else "rate_limit_exceeded"
    assert error_of(surface, answers[2]) == (429, expected) and int(answers[2].headers["retry-after"]) >= 1


def test_route_rate_limits_hold_for_every_surface(gateway: RunningGateway) -> None:
    limits = gateway.gateway.runtime.rate_limits
    limits.apply(MODELS["openai"], 1, 1, True)
    limits.apply(EMBEDDING_MODELS["openai"], 1, 1, True)
    try:
        chat = [post(gateway, surface) for surface in ("responses", "messages", "completions")]
        embeddings = [post(gateway, "embeddings") for _ in range(2)]
    finally:
        limits.apply(MODELS["openai"], 1, 1, False)
        limits.apply(EMBEDDING_MODELS["openai"], 1, 1, False)
    assert [a.status_code for a in chat] == [200, 429, 429] and error_of("messages", chat[1])[1] == "rate_limit_error"
    assert [a.status_code for a in embeddings] == [200, 429] and "retry-after" in embeddings[1].headers


@pytest.mark.parametrize("surface", list(SURFACES))
def test_bodies_over_the_limit_and_bad_json(gateway: RunningGateway, surface: str) -> None:
    huge = post(gateway, surface, padding="x" * (LIMIT + 1))
    path = SURFACES[surface][0]
    garbage = httpx.post(gateway.url + path, content=b"{nope", headers={"x-api-key": FULL_KEY})
    if SURFACES[surface][2] == "anthropic":
        assert error_of(surface, huge) == (413, "request_too_large")
        assert error_of(surface, garbage) == (400, "invalid_request_error")
    else:
        assert error_of(surface, huge) == (413, "request_too_large")
        assert error_of(surface, garbage) == (400, "invalid_json")


@pytest.mark.parametrize("surface", ["responses", "messages", "completions", "embeddings"])
def test_routing_headers(gateway: RunningGateway, surface: str) -> None:
    answer = post(gateway, surface, routing_strategy="round_robin") if surface != "messages" else post(gateway, surface)
    assert answer.headers["x-ailb-provider"] == "openai" and answer.headers["x-ailb-deployment"] == "openai"
    assert answer.headers["x-ailb-attempts"] == "1" and answer.headers["x-ailb-strategy"] in ("round_robin", "failover")


def test_metrics_are_labelled_by_route(gateway: RunningGateway) -> None:
    for surface in SURFACES:
        assert post(gateway, surface).status_code == 200
    assert post(gateway, "messages", model="nope").status_code == 404
    scraped = httpx.get(gateway.url + "/metrics").text
    counted: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name == "ailb_requests_total":
                key = (sample.labels["route"], sample.labels["status"])
                counted[key] = counted.get(key, 0) + sample.value
    for surface in SURFACES:
        assert counted.get((surface, "200"), 0) >= 1, surface
    assert counted[("messages", "404")] >= 1


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_answers_are_scrubbed_of_secrets_on_every_surface(
    gateway: RunningGateway, upstreams: Upstreams, provider: str, streamed: bool
) -> None:
    secret = OPENAI_KEY if provider == "openai" else ANTHROPIC_KEY
    cut = len(secret) // 2
    upstreams[provider].fake.reply = Reply(pieces=["my key is ", secret[:cut], secret[cut:], " ok"])
    model = MODELS[provider]
    texts = []
    oai, ant = openai_client(gateway, FULL_KEY), anthropic_client(gateway, FULL_KEY)
    if streamed:
        with oai.responses.stream(model=model, input="key?") as stream:
            texts.append(stream.get_final_response().output_text)
        with ant.messages.stream(model=model, max_tokens=64, messages=HI) as stream:
            texts.append("".join(stream.text_stream))
        texts.append(
            "".join(
                c.choices[0].text for c in oai.completions.create(model=model, prompt="k", stream=True) if c.choices
            )
        )
    else:
        texts.append(oai.responses.create(model=model, input="key?").output_text)
        texts.append(ant.messages.create(model=model, max_tokens=64, messages=HI).content[0].text)  # type: ignore[union-attr]
        texts.append(oai.completions.create(model=model, prompt="k").choices[0].text)
    assert texts == ["my key is **** ok"] * 3


@pytest.mark.parametrize("surface", ["responses", "messages", "completions", "embeddings"])
def test_upstream_errors_quoting_keys_never_reach_the_client(
    gateway: RunningGateway, upstreams: Upstreams, surface: str
) -> None:
    upstreams.openai.fail_always(Fault.status(401, quote_key=True))
    upstreams.openai.probe_fault = Fault.status(401, quote_key=True)
    answer = post(gateway, surface)
    assert answer.status_code == 502 and OPENAI_KEY not in answer.text and FULL_KEY not in answer.text
    assert "rejected the gateway's credentials" in answer.text or "misconfigured" in answer.text
    assert sent(upstreams, "anthropic") == []
