"""The API surfaces' request metrics, recorded once by the HTTP edge from what the route noted: the ASGI app
called in process (no HTTP server) in front of the wire-level OpenAI fake on loopback."""

from __future__ import annotations

import re
from typing import Any

from tests.asgi_driver import gateway_in_front_of, sent_messages
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.script import Fault


async def post(app: Any, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """One request through the ASGI app; its status and whole body."""
    sent = await sent_messages(app, path, body)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "") for key, value in labels.items()):
            total += float(match.group(2))
    return total


async def test_a_request_is_counted_once_with_its_route_deployment_status_and_first_byte() -> None:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_in_front_of(fake) as (gateway, app):
        question = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        assert (await post(app, "/v1/chat/completions", question))[0] == 200
        fake.fail_next(Fault.drop_mid_stream(after_chunks=1))
        status, body = await post(app, "/v1/chat/completions", {**question, "stream": True})
        assert status == 200 and b"event: error" in body and not body.endswith(b"data: [DONE]\n\n")
        assert (await post(app, "/v1/responses", {"model": "gpt-4o", "input": "hi", "stream": True}))[0] == 200
        assert (await post(app, "/v1/chat/completions", {"model": "nope", "messages": []}))[0] == 400
        text = gateway.metrics.render()[0].decode()
    requests = "ailb_requests_total"
    assert sample(text, requests, route="chat", status="200", deployment="openai", model="gpt-4o") == 1
    # A stream that broke after its first byte began with 200 but is counted with the failure's status.
    assert sample(text, requests, route="chat", deployment="openai", model="gpt-4o", status="503") == 1
    assert sample(text, requests, route="responses", status="200", deployment="openai") == 1
    assert sample(text, requests, route="chat", status="400", deployment="none") == 1
    assert sample(text, requests) == 4
    assert sample(text, "ailb_time_to_first_token_seconds_count", model="gpt-4o") == 2  # the two streams
    assert sample(text, "ailb_request_duration_seconds_count", route="chat") == 3
    assert sample(text, "ailb_gateway_overhead_seconds_count") == 4
    assert sample(text, "ailb_active_requests") == 0
