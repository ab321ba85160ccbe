"""What the HTTP server protocol costs per request: uvicorn's httptools protocol against AILB's own
(``ailb.http.protocol``, with the HTTP limits).

Both serve the same keep-alive connection (an in-memory transport, no sockets) on uvloop: a typical chat
request (an OpenAI SDK's headers and a small JSON body) goes in, a trivial ASGI app reads the body and answers,
either plainly (one JSON body with a Content-Length) or streamed (``--stream``: a head, then ``--events`` body
messages, the last one ending the answer, chunked; AILB's SSE writer sends a stream that arrived in one read as
one body message, ``--events 1``). Rounds alternate between the two so a
disturbance on the machine hits both; the report gives the median CPU microseconds per request of each, their
difference, and the transport writes each makes per request (each one a system call on a real socket).

With ``--sockets N`` the requests go over N kept-alive loopback connections instead, from a client in another
process (N requests in flight), so the figure includes what the server's socket reads and writes cost: the CPU
time of this process (the server alone) divided by the requests answered.

    python -m bench.http_protocol              # --requests 20000 --rounds 7
    python -m bench.http_protocol --stream     # --events 2
    python -m bench.http_protocol --sockets 8  # over loopback sockets
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
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
EVENT = b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"delta":{"content":"hi"}}]}\n\n'
STREAM_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
CHUNKED_END = b"0\r\n\r\n"


async def read_body(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def stream_app(events: int) -> Any:
    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
        for left in range(events - 1, -1, -1):
            await send({"type": "http.response.body", "body": EVENT, "more_body": bool(left)})

    return streamed


class Transport(asyncio.Transport):
    """Counts what the protocol writes; ``answered`` is set at each response's end."""

    def __init__(self, end: bytes) -> None:
        super().__init__()
        self.answered = asyncio.Event()
        self.end = end
        self.writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        if bytes(data).endswith(self.end):
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


async def serve(protocol_class: type[asyncio.Protocol], served: Any, end: bytes, requests: int) -> tuple[float, float]:
    """CPU microseconds per request over one kept-alive connection, and transport writes per request."""
    config = uvicorn.Config(served, lifespan="off", log_config=None, access_log=False, proxy_headers=False)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
    transport = Transport(end)
    protocol.connection_made(transport)
    started = time.process_time()  # CPU time of this process: steadier than wall time on a shared machine
    for _ in range(requests):
        transport.answered.clear()
        protocol.data_received(REQUEST)
        await transport.answered.wait()
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed / requests * 1e6, transport.writes / requests


async def serve_sockets(
    protocol_class: type[asyncio.Protocol], served: Any, end: bytes, requests: int, connections: int
) -> tuple[float, float]:
    """CPU microseconds of this process per request answered over loopback sockets (writes: not counted)."""
    loop = asyncio.get_running_loop()
    config = uvicorn.Config(served, lifespan="off", log_config=None, access_log=False, proxy_headers=False)
    config.load()
    state = ServerState()

    def build() -> asyncio.Protocol:
        return protocol_class(config=config, server_state=state, app_state={}, _loop=loop)  # type: ignore[call-arg]

    server = await loop.create_server(build, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    command = [sys.executable, "-m", "bench.http_protocol", "--client", str(port), "--requests", str(requests)]
    started = time.process_time()
    client = await asyncio.create_subprocess_exec(
        *command, "--sockets", str(connections), "--end", end.hex(), stdout=subprocess.DEVNULL
    )
    await client.wait()
    elapsed = time.process_time() - started
    server.close()
    await server.wait_closed()
    assert client.returncode == 0 and state.total_requests == requests, (client.returncode, state.total_requests)
    return elapsed / requests * 1e6, float("nan")


async def client(port: int, requests: int, connections: int, end: bytes) -> None:
    """Each connection sends a request, reads its answer to ``end``, and again."""

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(REQUEST)
            await reader.readuntil(end)
        writer.close()

    share, extra = divmod(requests, connections)
    await asyncio.gather(*(one(share + (n < extra)) for n in range(connections)))


CONTENDERS: dict[str, type[asyncio.Protocol]] = {
    "uvicorn HttpToolsProtocol": HttpToolsProtocol,
    "AILB HttpProtocol (limits on)": limited_protocol(HttpLimits()),
}


async def measure(
    requests: int, rounds: int, events: int | None, connections: int, contenders: dict[str, type[asyncio.Protocol]]
) -> None:
    """Alternating rounds of each contender; the difference printed is the last one's against the first."""
    served, end = (app, ANSWER) if events is None else (stream_app(events), CHUNKED_END)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    writes: dict[str, float] = {}

    async def run(protocol_class: type[asyncio.Protocol], count: int) -> tuple[float, float]:
        if connections:
            return await serve_sockets(protocol_class, served, end, count, connections)
        return await serve(protocol_class, served, end, count)

    for protocol_class in contenders.values():
        await run(protocol_class, requests // 4)  # warm-up
    for _ in range(rounds):
        for name, protocol_class in contenders.items():
            cpu, writes[name] = await run(protocol_class, requests)
            times[name].append(cpu)
    shape = "plain" if events is None else f"streamed ({events} body messages)"
    where = f"{connections} loopback connections" if connections else "one in-memory connection"
    print(f"requests per round: {requests}, rounds: {rounds}, request: {len(REQUEST)} bytes, {shape}, {where}")
    for name, figures in times.items():
        counted = f", {writes[name]:g} writes/request" if not connections else ""
        print(f"{name:32} {statistics.median(figures):7.2f} µs/request (median; min {min(figures):.2f}){counted}")
    medians = [statistics.median(figures) for figures in times.values()]
    base, mine = medians[0], medians[-1]
    print(f"{'difference':32} {mine - base:+7.2f} µs/request ({(mine / base - 1) * 100:+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stream", action="store_true", help="answer with a chunked stream of body messages")
    parser.add_argument("--events", type=int, default=2, help="body messages of a streamed answer")
    parser.add_argument("--sockets", type=int, default=0, help="over this many loopback connections (0: in memory)")
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)  # the client process, given the port
    parser.add_argument("--end", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        uvloop.run(client(args.client, args.requests, args.sockets, bytes.fromhex(args.end)))
        return
    uvloop.run(measure(args.requests, args.rounds, args.events if args.stream else None, args.sockets, CONTENDERS))


if __name__ == "__main__":
    main()
