"""The gateway's HTTP edges over a real socket: bad input, size limits, honest streams, disconnects, OpenAPI."""

from __future__ import annotations

import gc
import re
import socket
import time

import httpx
import openai
import orjson
import pytest

from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import Upstreams

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def gateway(run_gateway: GatewayFactory, upstreams: Upstreams) -> RunningGateway:
    upstreams.reset()
    return run_gateway({**upstreams.env(), "MAX_REQUEST_BYTES": "65536"})


def _assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)


def test_bad_input_gets_openai_shaped_errors(gateway: RunningGateway, upstreams: Upstreams) -> None:
    url = gateway.v1 + "/chat/completions"
    with httpx.Client(timeout=10) as http:
        _assert_openai_error(
            http.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400, "invalid_json"
        )
        _assert_openai_error(
            http.post(url, content=b"[1]", headers={"content-type": "application/json"}), 400, "invalid_json"
        )
        deep = b"[" * 5000 + b"]" * 5000
        _assert_openai_error(http.post(url, content=deep, headers={"content-type": "application/json"}), 400)
        _assert_openai_error(http.post(url, content=b"model=x", headers={"content-type": "text/plain"}), 415)
        error = _assert_openai_error(http.post(url, json={**CHAT, "messages": "hi"}), 400)
        assert error["param"] == "messages"
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 70_000}]}
        _assert_openai_error(http.post(url, json=big), 413)
        chunked = http.post(url, content=iter([orjson.dumps(big)]), headers={"content-type": "application/json"})
        _assert_openai_error(chunked, 413)
        _assert_openai_error(http.get(gateway.url + "/v1/nothing-here"), 404)
        error = _assert_openai_error(http.post(url, json={**CHAT, "session_id": "has spaces"}), 400)
        assert error["param"] == "session_id"
    assert upstreams.total_chat_calls() == 0


def test_stream_cut_after_content_is_an_error_not_a_clean_end(gateway: RunningGateway, upstreams: Upstreams) -> None:
    upstreams["openai"].set_reply("a b c d e f g h")
    upstreams["openai"].drop_next_stream_after(2)
    client = openai.OpenAI(base_url=gateway.v1, api_key="x", max_retries=0)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=CHAT["messages"], stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert received, "content arrived before the cut"

    upstreams["openai"].drop_next_stream_after(2)
    with httpx.Client(timeout=10) as http:
        body = http.post(gateway.v1 + "/chat/completions", json={**CHAT, "stream": True}).text
    assert "event: error" in body
    assert "[DONE]" not in body


def test_client_disconnect_cancels_the_upstream_stream(gateway: RunningGateway, upstreams: Upstreams) -> None:
    fake = upstreams["openai"]
    fake.set_reply(" ".join(f"w{i}" for i in range(200)))
    fake.set_chunk_delay(0.05)
    before = fake.disconnects()
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", gateway.v1 + "/chat/completions", json={**CHAT, "stream": True}) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: ") and "w1" in line:
                    break
    deadline = time.monotonic() + 5
    while fake.disconnects() == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.disconnects() == before + 1
    fake.set_chunk_delay(0)


def test_openapi_describes_the_endpoints(gateway: RunningGateway) -> None:
    spec = httpx.get(gateway.url + "/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request_schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"model", "messages"} <= set(request_schema["required"])
    assert {"stream", "tools", "session_id", "rag_collection"} <= set(request_schema["properties"])
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert "404" in chat["responses"]
    assert "/v1/models" in spec["paths"] and "/healthz" in spec["paths"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_outside(gateway: RunningGateway, page: str) -> None:
    html = httpx.get(gateway.url + page).text
    referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *['"]([^'"]+)['"]""", html)
    urls = [a or b for a, b in referenced]
    assert urls and all(url.startswith("/") for url in urls), urls  # the CDN default would be https://...
    assert "https://" not in html and "http://" not in html
    for url in urls:
        response = httpx.get(gateway.url + url)
        assert response.status_code == 200, url
        assert len(response.content) > 1000 or url == "/openapi.json"
    assert "validatorUrl" not in html or '"validatorUrl": null' in html


def test_only_the_docs_assets_are_served(gateway: RunningGateway) -> None:
    assert httpx.get(gateway.url + "/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    for name in ("core.py", "..%2Fcore.py", "missing.js"):
        assert httpx.get(gateway.url + "/docs/assets/" + name).status_code == 404


def test_healthz_reports_each_deployment(gateway: RunningGateway) -> None:
    response = httpx.get(gateway.url + "/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] in ("ok", "degraded")
    assert set(body["deployments"]) == {"openai", "anthropic", "ollama"}
    assert body["memory"] == "disabled"
    assert body["shared_state"] == "disabled"  # no REDIS_URL: limits and control state live in the process


@pytest.mark.parametrize("stream", [False, True])
def test_client_leaving_before_the_answer_cancels_the_upstream_call(
    gateway: RunningGateway, upstreams: Upstreams, stream: bool
) -> None:
    fake = upstreams["openai"].fake
    fake.latency = 3.0
    before = fake.disconnects
    body = orjson.dumps({**CHAT, "stream": stream})
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as client:
        client.sendall(request)
        deadline = time.monotonic() + 5
        while fake.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.in_flight == 1
    deadline = time.monotonic() + 2.5  # well before the upstream's own answer at 3 s
    while fake.disconnects == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.disconnects == before + 1


def test_finished_requests_leave_nothing_for_the_cycle_collector(gateway: RunningGateway) -> None:
    # An object in a reference cycle outlives its request until a collection finds it; under load those collections
    # scanned every request in flight (~20 ms each, and more CPU than the requests' own work in some paths).
    url = gateway.v1 + "/chat/completions"
    requests = [
        {"json": CHAT},
        {"json": {**CHAT, "stream": True}},
        {"json": {**CHAT, "messages": "hi"}},  # refused: 400
    ]
    with httpx.Client(timeout=10) as http:  # one kept-alive connection: its own objects stay in use
        for request in requests:  # what is made once, on first use
            http.post(url, **request)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            answers = [http.post(url, **request) for _ in range(5) for request in requests]
            http.get(gateway.v1 + "/models").raise_for_status()
            gc.collect()
            ours = [type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("ailb")]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert [answer.status_code for answer in answers] == [200, 200, 400] * 5
    assert b"data: [DONE]" in answers[1].content
    assert ours == []
