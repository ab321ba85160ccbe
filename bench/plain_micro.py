"""CPU per plain chat request through AILB's whole ASGI app, in process, without sockets or an HTTP client.

    python -m bench.plain_micro [--requests 5000] [--rounds 7] [--deployments 2]

The app is ``ailb serve``'s (``create_app`` of a ``Gateway``: the HTTP edge, auth, reading and validating the
body, routing, the provider's request and response translation, metrics), on uvloop, each request in its own
task as uvicorn runs it. Issue 13's ~2 KB request goes in as uvicorn hands it over; only the upstream HTTP call is
replaced: each deployment's transport answers the fake upstream's completion at once. So what is timed is what
AILB itself spends per request outside the HTTP server and client, the part this process can change.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import orjson
import uvloop

from ailb.bootstrap import Gateway
from ailb.cli import collect_as_served
from ailb.http.app import create_app
from ailb.settings import DeploymentConfig, Settings
from bench.probes import ISSUE_BODY
from bench.targets import API_KEY, MODEL

BODY = orjson.dumps(ISSUE_BODY)
HEADERS = [
    (b"host", b"127.0.0.1:8080"),
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer sk-bench-client"),
    (b"content-length", str(len(BODY)).encode()),
]
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello from the fake upstream."},
             "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
)  # fmt: skip


class InstantTransport:
    """What ``Transport.post_json_raw`` returns for the fake upstream's answer, at once."""

    async def post_json_raw(self, path: str, payload: bytes) -> tuple[bytes, Any]:
        return ANSWER, orjson.loads(ANSWER)


def settings_of(deployments: int) -> Settings:
    """``deployments`` OpenAI deployments of the benchmark's model (never reached: their transports are replaced)."""
    configs = tuple(
        DeploymentConfig(name=f"fake-{i}", provider="openai", base_url=f"http://127.0.0.1:{9000 + i}/v1",
                         api_key=API_KEY, models=(MODEL,))
        for i in range(deployments)
    )  # fmt: skip
    return Settings(deployments=configs, enable_grpc=False, log_level="warning")


def gateway_of(deployments: int) -> Gateway:
    gateway = Gateway(settings_of(deployments))
    for provider in gateway.runtime.providers.values():
        provider.transport = InstantTransport()  # type: ignore[attr-defined]
    return gateway


def scope_of() -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000), "scheme": "http", "method": "POST",
        "root_path": "", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
        "query_string": b"", "headers": list(HEADERS), "state": {},
    }  # fmt: skip


class Exchange:
    """One request's ``receive`` (the body, then nothing until cancelled) and ``send`` (keeps the status)."""

    def __init__(self, never: asyncio.Future[None]) -> None:
        self._sent_body = False
        self._never = never
        self.status = 0

    async def receive(self) -> dict[str, Any]:
        if not self._sent_body:
            self._sent_body = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await self._never
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]


async def per_request_us(app: Any, requests: int) -> float:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    started = time.process_time()
    for _ in range(requests):
        exchange = Exchange(never)
        await loop.create_task(app(scope_of(), exchange.receive, exchange.send))
        if exchange.status != 200:
            raise RuntimeError(f"the app answered {exchange.status}")
    return (time.process_time() - started) / requests * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--deployments", type=int, default=2)
    args = parser.parse_args()
    gateway = gateway_of(args.deployments)
    gateway.runtime.router.tokens.warm()
    app = create_app(gateway)
    collect_as_served()
    await per_request_us(app, args.requests // 5)  # warm-up
    times = sorted([await per_request_us(app, args.requests) for _ in range(args.rounds)])
    print(
        f"plain request, {args.deployments} deployment(s): {times[0]:.1f} µs per request (min), "
        f"{statistics.median(times):.1f} (median) of {args.rounds} × {args.requests}"
    )


if __name__ == "__main__":
    uvloop.run(main())
