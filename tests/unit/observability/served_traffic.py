"""The app ``ailb serve`` runs, driven in process in front of the wire-level OpenAI fake, and its ``/metrics``
exposition with the timing-dependent values masked: ``golden_served_exposition.txt`` holds what it rendered
before the per-request path changed (families, label sets, counts, tokens and the in-flight gauge exact).
A deliberate change of the exposition rewrites it: ``python -m tests.unit.observability.served_traffic``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.asgi_driver import gateway_in_front_of, sent_messages
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.script import Fault

GOLDEN = Path(__file__).with_name("golden_served_exposition.txt")
# Sums, buckets and creation times depend on the clock; counts and counters do not.
_TIMED = re.compile(r"^(\S+_(?:sum|bucket|created)(?:\{.*\})?) (\S+)$", re.MULTILINE)


async def _post(app: Any, path: str, body: dict[str, Any]) -> int:
    sent = await sent_messages(app, path, body)
    status: int = sent[0]["status"]
    return status


async def served_exposition(rounds: int = 3) -> str:
    async with OpenAIFake(api_key="sk-upstream-1") as fake, gateway_in_front_of(fake) as (gateway, app):
        question = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(rounds):
            assert await _post(app, "/v1/chat/completions", question) == 200
            streamed = {**question, "stream": True, "stream_options": {"include_usage": True}}
            assert await _post(app, "/v1/chat/completions", streamed) == 200
            fake.fail_next(Fault.drop_mid_stream(after_chunks=1))
            assert await _post(app, "/v1/chat/completions", {**question, "stream": True}) == 200
            assert await _post(app, "/v1/responses", {"model": "gpt-4o", "input": "hi"}) == 200
            assert await _post(app, "/v1/chat/completions", {"model": "nope", "messages": []}) == 400
            assert await _post(app, "/v1/embeddings", {"model": "gpt-4o", "input": "hi"}) == 404  # no such model
        text = gateway.metrics.render()[0].decode()
    return _TIMED.sub(r"\1 MASKED", text)


if __name__ == "__main__":
    import asyncio

    GOLDEN.write_text(asyncio.run(served_exposition()))
