"""A provider key never reaches the client, whatever the upstream does with it (issue 9, item 1).

Each upstream here quotes the key it received (as sent and upper-cased) in its error texts, or echoes it in its
answers; the real gateway, over a real socket, must pass none of it on.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.fakes import Fault, Reply
from tests.integration.canary_support import (
    CANARY,
    GATEWAY_ENV,
    KINDS,
    Fakes,
    assert_clean,
    canary_fakes,
    chat,
    config_yaml,
    leaks,
    post_stream,
    reset,
)
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with canary_fakes() as running:
        yield running


@pytest.fixture
def gateway(run_gateway: GatewayFactory, fakes: Fakes) -> RunningGateway:
    reset(fakes)
    return run_gateway(dict(GATEWAY_ENV), config_yaml(fakes))


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20) as client:
        yield client


def url(gateway: RunningGateway) -> str:
    return gateway.v1 + "/chat/completions"


def sse_payloads(text: str) -> list[tuple[str, dict[str, object]]]:
    """``(event name, JSON data)`` of each SSE event but ``[DONE]``."""
    events = []
    for block in text.strip().split("\n\n"):
        name, data = "", ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data and data != "[DONE]":
            events.append((name, orjson.loads(data)))
    return events


def streamed_content(text: str) -> str:
    return "".join(
        str(choice["delta"].get("content") or "")  # type: ignore[index, union-attr]
        for name, data in sse_payloads(text)
        if not name
        for choice in data.get("choices", [])  # type: ignore[union-attr]
    )


# --- errors that quote the key ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_in_stream_error_after_content_quoting_the_key(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str
) -> None:
    fakes[kind].reply = "one two three four"
    fakes[kind].fail_next(Fault.error_event(after_chunks=2, quote_key=True))
    response, text = post_stream(http, url(gateway), chat(kind, stream=True))
    assert response.status_code == 200
    errors = [data for name, data in sse_payloads(text) if name == "error"]
    assert len(errors) == 1 and "[DONE]" not in text
    assert f"{kind}-canary" in str(errors[0]["error"]["message"])  # type: ignore[index]
    assert_clean(response, text)


@pytest.mark.parametrize("kind", KINDS)
def test_in_stream_error_before_content_quoting_the_key(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str
) -> None:
    fakes[kind].fail_next(Fault.error_event(after_chunks=0, quote_key=True))
    response, text = post_stream(http, url(gateway), chat(kind, stream=True))
    assert response.status_code >= 500
    assert set(orjson.loads(text)["error"]) == {"message", "type", "param", "code"}
    assert_clean(response, text)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [500, 503, 401, 403])
def test_server_and_credential_errors_quoting_the_key(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str, status: int
) -> None:
    fakes[kind].fail_next(Fault.status(status, quote_key=True), Fault.status(status, quote_key=True))
    plain = http.post(url(gateway), json=chat(kind))
    assert plain.status_code == 502
    assert "Incorrect API key" not in plain.text  # an upstream's words are never the message of a 5xx
    assert_clean(plain)
    streamed, text = post_stream(http, url(gateway), chat(kind, stream=True))
    assert streamed.status_code == 502
    assert_clean(streamed, text)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [400, 429])
def test_client_errors_keep_the_upstream_message_without_the_key(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str, status: int
) -> None:
    fakes[kind].fail_next(Fault.status(status, quote_key=True))
    response = http.post(url(gateway), json=chat(kind))
    assert response.status_code == status
    message = response.json()["error"]["message"]
    assert "Incorrect API key provided" in message and "****" in message
    assert_clean(response)


# --- answers that echo the key ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_answers_echoing_the_key_are_scrubbed(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str
) -> None:
    fakes[kind].reply = f"Your key is {CANARY} or {CANARY.lower()}, keep it safe."
    plain = http.post(url(gateway), json=chat(kind))
    assert plain.status_code == 200
    content = plain.json()["choices"][0]["message"]["content"]
    assert content == "Your key is **** or ****, keep it safe."
    assert_clean(plain)
    streamed, text = post_stream(http, url(gateway), chat(kind, stream=True))
    assert streamed_content(text) == "Your key is **** or ****, keep it safe."
    assert_clean(streamed, text)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cut", [1, 5, len(CANARY) - 1])
def test_a_key_split_across_stream_chunks_is_scrubbed(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str, cut: int
) -> None:
    fakes[kind].reply = Reply(pieces=["Key: ", "x" + CANARY[:cut], CANARY[cut:].upper() + " end", " done"])
    response, text = post_stream(http, url(gateway), chat(kind, stream=True))
    assert streamed_content(text) == "Key: x**** end done"
    assert text.rstrip().endswith("data: [DONE]")
    assert_clean(response, text)


def test_a_key_split_over_three_chunks_is_scrubbed(gateway: RunningGateway, fakes: Fakes, http: httpx.Client) -> None:
    fakes["openai"].reply = Reply(pieces=["a " + CANARY[:4], CANARY[4:9], "", CANARY[9:], " b"])
    response, text = post_stream(http, url(gateway), chat("openai", stream=True))
    assert streamed_content(text) == "a **** b"
    assert_clean(response, text)


@pytest.mark.parametrize("kind", KINDS)
def test_a_json_escaped_key_is_scrubbed(gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str) -> None:
    fakes[kind].reply = f"echo {CANARY} done"
    fakes[kind].rewrite = lambda raw: raw.replace(b"sk-CANARY", b"\\u0073k\\u002dCANARY")
    plain = http.post(url(gateway), json=chat(kind))
    assert plain.json()["choices"][0]["message"]["content"] == "echo **** done"
    assert_clean(plain)
    streamed, text = post_stream(http, url(gateway), chat(kind, stream=True))
    assert streamed_content(text) == "echo **** done"
    assert_clean(streamed, text)


@pytest.mark.parametrize("kind", KINDS)
def test_tool_call_arguments_echoing_the_key_are_scrubbed(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client, kind: str
) -> None:
    fakes[kind].reply = Reply(tool_calls=[("login", orjson.dumps({"key": CANARY}).decode())])
    tools = [{"type": "function", "function": {"name": "login", "parameters": {"type": "object"}}}]
    plain = http.post(url(gateway), json=chat(kind, tools=tools))
    assert plain.status_code == 200 and plain.json()["choices"][0]["message"]["tool_calls"]
    assert_clean(plain)
    if kind == "ollama":  # the others stream arguments in 8-character fragments (scrubbed one by one)
        streamed, text = post_stream(http, url(gateway), chat(kind, stream=True, tools=tools))
        assert "tool_calls" in text
        assert_clean(streamed, text)


def test_answers_keep_credential_shaped_text_that_is_not_a_configured_secret(
    gateway: RunningGateway, fakes: Fakes, http: httpx.Client
) -> None:
    code = 'curl -H "Authorization: Bearer $TOKEN" -H "x-api-key: abc123def456" # sk-proj-exampleexample'
    fakes["openai"].reply = code
    plain = http.post(url(gateway), json=chat("openai"))
    assert plain.json()["choices"][0]["message"]["content"] == code
    _, text = post_stream(http, url(gateway), chat("openai", stream=True))
    assert streamed_content(text) == code


def test_the_canary_check_itself_sees_escapes_and_casing() -> None:
    assert leaks(CANARY.upper()) and leaks('"\\u0073k-CANARY' + CANARY[9:] + '"')
    assert not leaks(CANARY[:-1] + " " + CANARY[-1])
