"""What the HTTP limits cost per request: uvicorn's httptools protocol against AILB's limited subclass.

Both serve the same keep-alive connection (an in-memory transport, no sockets) on uvloop: a typical chat
request (an OpenAI SDK's headers and a small JSON body) goes in, a trivial ASGI app reads the body and answers.
Rounds alternate between the two so a disturbance on the machine hits both; the report gives the median
microseconds per request of each and their difference.

    python -m bench.http_protocol            # --requests 20000 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import orjson
import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ailb.http.protocol import limited_protocol
from ailb.settings import HttpLimits

BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 16}
)
HEAD = (
    "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: application/json\r\n"
    "Content-Type: application/json\r\nUser-Agent: OpenAI/Python 1.99.0\r\nX-Stainless-Lang: python\r\n"
    "X-Stainless-Package-Version: 1.99.0\r\nX-Stainless-OS: Linux\r\nX-Stainless-Arch: x64\r\n"
    "X-Stainless-Runtime: CPython\r\nX-Stainless-Runtime-Version: 3.11.7\r\nAuthorization: Bearer sk-bench\r\n"
    "X-Stainless-Async: false\r\nX-Stainless-Retry-Count: 0\r\nAccept-Encoding: gzip, deflate\r\n"
    f"Connection: keep-alive\r\nContent-Length: {len(BODY)}\r\n\r\n"
).encode()
REQUEST = HEAD + BODY
ANSWER = b'{"id":"x","object":"chat.completion","choices":[]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


class Transport(asyncio.Transport):
    """Collects what the protocol writes; ``answered`` is set at each response's end."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if bytes(data).endswith(ANSWER):
            self.answered.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def serve(protocol_class: type[HttpToolsProtocol], requests: int) -> float:
    """CPU microseconds per request over one kept-alive connection."""
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    started = time.process_time()  # CPU time of this process: steadier than wall time on a shared machine
    for _ in range(requests):
        transport.answered.clear()
        protocol.data_received(REQUEST)
        await transport.answered.wait()
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed / requests * 1e6


async def measure(requests: int, rounds: int) -> None:
    limited = limited_protocol(HttpLimits())
    plain: list[float] = []
    guarded: list[float] = []
    await serve(HttpToolsProtocol, requests // 4)  # warm-up
    await serve(limited, requests // 4)
    for _ in range(rounds):
        plain.append(await serve(HttpToolsProtocol, requests))
        guarded.append(await serve(limited, requests))
    base, mine = statistics.median(plain), statistics.median(guarded)
    print(f"requests per round: {requests}, rounds: {rounds}, request: {len(REQUEST)} bytes, one connection")
    print(f"uvicorn HttpToolsProtocol: {base:.2f} µs/request (median; min {min(plain):.2f})")
    print(f"AILB limited protocol:     {mine:.2f} µs/request (median; min {min(guarded):.2f})")
    print(f"difference:                {mine - base:+.2f} µs/request ({(mine / base - 1) * 100:+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    uvloop.run(measure(args.requests, args.rounds))


if __name__ == "__main__":
    main()
