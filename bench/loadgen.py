"""A lean HTTP/1.1 load generator (raw asyncio protocol on uvloop, httptools parser), run in its own process.

Open loop (``--rate``): requests start on a fixed schedule whatever the answers do, so a slow server shows up
as latency instead of a slower send rate; latency is measured from the moment a request was written (or was
due, when no idle connection was at hand and one had to be opened). Closed loop (``--concurrency``): each of
N connections sends its next request as soon as the last one is answered, for throughput.
Streaming answers also give the time to the first body byte and to the first content token (the first body
piece with a ``"content"`` that is not empty). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    first_contents: list[float] = field(default_factory=list)
    errors: int = 0
    error_detail: str = ""
    answered: int = 0  # every answer, warm-up included, to divide the server's CPU time by


Done = Callable[["Connection", int, float, float | None, bool], None]
# A streamed chunk whose delta carries text (an empty role chunk does not); any JSON spacing.
CONTENT = re.compile(rb'"content":\s*"[^"]')


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, done: Done) -> None:
        self.done = done
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.started = 0.0
        self.first_byte: float | None = None
        self.first_content: float | None = None
        self.busy = False
        self.closed = False
        self.in_window = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass asyncio's

    def send(self, request: bytes, started: float | None = None) -> None:
        assert self.transport is not None
        self.started = perf_counter() if started is None else started
        self.first_byte = None
        self.first_content = None
        self.busy = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail()

    def on_body(self, body: bytes) -> None:
        if self.first_content is None and body:
            now = perf_counter() - self.started
            if self.first_byte is None:
                self.first_byte = now
            if CONTENT.search(body):
                self.first_content = now

    def on_message_complete(self) -> None:
        finished = perf_counter() - self.started
        self.busy = False
        keep_alive = self.parser.should_keep_alive()
        self.done(self, self.parser.get_status_code(), finished, self.first_byte, keep_alive)
        if not keep_alive:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.busy:
            self._fail()

    def _fail(self) -> None:
        if self.busy:
            self.busy = False
            self.done(self, 0, perf_counter() - self.started, None, False)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Client:
    """Counts answers that start inside the measured window; keeps idle connections for reuse."""

    def __init__(self, host: str, port: int, make_request: Callable[[int], bytes]) -> None:
        self.host, self.port, self.make_request = host, port, make_request
        self.sent = 0
        self.samples = Samples()
        self.idle: list[Connection] = []
        self.in_flight = 0
        self.measuring = False
        self.on_idle: Callable[[Connection], None] | None = None

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: Connection(self._done), self.host, self.port)
        return conn

    def _done(self, conn: Connection, status: int, seconds: float, first_byte: float | None, reuse: bool) -> None:
        self.in_flight -= 1
        self.samples.answered += 1
        if conn.in_window:
            if status == 200:
                self.samples.latencies.append(seconds)
                if first_byte is not None:
                    self.samples.first_bytes.append(first_byte)
                if conn.first_content is not None:
                    self.samples.first_contents.append(conn.first_content)
            else:
                self.samples.errors += 1
                self.samples.error_detail = f"status {status}" if status else "connection failed"
        if reuse and not conn.closed:
            if self.on_idle is not None:
                self.on_idle(conn)
            else:
                self.idle.append(conn)

    def next_request(self) -> bytes:
        self.sent += 1
        return self.make_request(self.sent)

    def fire(self, conn: Connection, started: float | None = None) -> None:
        conn.in_window = self.measuring
        self.in_flight += 1
        conn.send(self.next_request(), started)

    async def fire_new(self, due: float) -> None:
        measuring = self.measuring
        try:
            conn = await self.connect()
        except OSError as exc:
            if measuring:
                self.samples.errors += 1
                self.samples.error_detail = f"connect: {exc}"
            return
        conn.in_window = measuring
        self.in_flight += 1
        conn.send(self.next_request(), due)


async def open_loop(client: Client, rate: float, warmup: float, duration: float, connections: int) -> float:
    client.idle.extend([await client.connect() for _ in range(connections)])
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    begin = loop.time()
    sent = 0
    while True:
        due = begin + sent * interval
        if due - begin >= warmup + duration:
            break
        client.measuring = due - begin >= warmup
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if client.idle:
            client.fire(client.idle.pop())
        else:
            task = loop.create_task(client.fire_new(perf_counter()))
            pending.add(task)
            task.add_done_callback(pending.discard)
        sent += 1
    client.measuring = False
    await _drain(client)
    return duration


async def closed_loop(client: Client, concurrency: int, warmup: float, duration: float) -> float:
    conns = [await client.connect() for _ in range(concurrency)]
    loop = asyncio.get_running_loop()
    begin = loop.time()
    stop_at = begin + warmup + duration

    def again(conn: Connection) -> None:
        now = loop.time()
        if now < stop_at:
            client.measuring = now - begin >= warmup
            client.fire(conn)

    client.on_idle = again
    for conn in conns:
        client.fire(conn)
    await asyncio.sleep(warmup + duration)
    client.measuring = False
    await _drain(client)
    return duration


async def _drain(client: Client, limit: float = 30.0) -> None:
    waited = 0.0
    while client.in_flight > 0 and waited < limit:
        await asyncio.sleep(0.01)
        waited += 0.01


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def raw(samples: Samples, duration: float) -> dict[str, Any]:
    """Everything the run measured, latencies in milliseconds, for the runner to pool across rounds."""
    return {
        "seconds": duration,
        "errors": samples.errors,
        "error_detail": samples.error_detail,
        "answered": samples.answered,
        "latencies_ms": [round(x * 1000, 4) for x in samples.latencies],
        "first_bytes_ms": [round(x * 1000, 4) for x in samples.first_bytes],
        "first_contents_ms": [round(x * 1000, 4) for x in samples.first_contents],
    }


def summary(result: dict[str, Any]) -> str:
    latencies, first_bytes = result["latencies_ms"], result["first_bytes_ms"]
    return (
        f"{len(latencies) / result['seconds']:.0f} req/s, {result['errors']} errors, "
        f"p50 {percentile(latencies, 0.5):.3f} ms, p99 {percentile(latencies, 0.99):.3f} ms, "
        f"first byte p50 {percentile(first_bytes, 0.5):.3f} ms, "
        f"first content p50 {percentile(result['first_contents_ms'], 0.5):.3f} ms"
    )


def build_request(url: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += headers
    lines.append(f"Content-Length: {len(body)}")
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def request_maker(url: str, body: str, headers: list[str], vary: int) -> Callable[[int], bytes]:
    """Request bytes for the n-th request: ``{n}`` in the body cycles through 0..vary-1, ``{i}`` is n itself
    (built per request; meant for low rates)."""
    bodies = [body.replace("{n}", str(n)) for n in range(vary)] if vary else [body]
    if "{i}" not in body:
        built = [build_request(url, each.encode(), headers)[2] for each in bodies]
        return lambda seq: built[seq % len(built)]
    return lambda seq: build_request(url, bodies[seq % len(bodies)].replace("{i}", str(seq)).encode(), headers)[2]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    host, port, _ = build_request(args.url, b"", [])
    client = Client(host, port, request_maker(args.url, args.body, args.header, args.vary))
    if args.rate:
        duration = await open_loop(client, args.rate, args.warmup, args.duration, args.connections)
    else:
        duration = await closed_loop(client, args.concurrency, args.warmup, args.duration)
    return raw(client.samples, duration)


def main() -> None:
    parser = argparse.ArgumentParser(description="Open- or closed-loop HTTP load generator (prints JSON).")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="JSON request body")
    parser.add_argument("--header", action="append", default=[], help="extra 'Name: value' header")
    parser.add_argument(
        "--vary", type=int, default=0, help="send N bodies in turn: {n} becomes 0..N-1 (and {i} the request's number)"
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", type=float, help="open loop: requests per second")
    mode.add_argument("--concurrency", type=int, help="closed loop: connections each with one request in flight")
    parser.add_argument("--connections", type=int, default=8, help="open loop: connections opened up front")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    result = uvloop.run(run(args))
    print(summary(result), file=sys.stderr)
    os.set_blocking(sys.stdout.fileno(), True)  # a non-blocking pipe cut a large result at 64 KiB
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
