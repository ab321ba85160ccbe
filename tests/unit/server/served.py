"""A raw ASGI app served by uvicorn's ``Server`` with AILB's protocol (``server_config``) on a loopback socket, and
a raw HTTP/1.1 client for it.

The protocol is AILB's own, subclassed only to record what each connection writes to its (real) transport, so a
test can see how many writes an answer took.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn

from ailb.http.exchange import ON_DISCONNECT
from ailb.http.protocol import HttpProtocol, limited_protocol
from ailb.http.server import server_config
from ailb.settings import HttpLimits, Settings
from tests.polling import eventually

WAIT = 10.0  # bound on every wait: a test fails rather than hangs


class TestApp:
    """Routes by path; records the disconnects it sees; ``release`` lets a held request go on."""

    __test__ = False

    def __init__(self) -> None:
        self.disconnects: list[str] = []
        self.disconnected = asyncio.Event()
        self.release = asyncio.Event()
        self.started: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        self.started.append(scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else ""))
        route = scope["path"].split("/")[1].replace("-", "_")  # /echo/anything is echo's
        await getattr(self, "route_" + route)(scope, receive, send)

    async def _lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started_by"] = "lifespan"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def read_body(receive: Any) -> bytes:
        body = b""
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            body += message["body"]
            if not message["more_body"]:
                return body

    @staticmethod
    async def answer(send: Any, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *(headers or [])]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": body})

    async def route_echo(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await self.read_body(receive)
        keys = ("method", "path", "raw_path", "query_string", "http_version", "scheme", "root_path", "type")
        seen = {key: scope[key].decode() if isinstance(scope[key], bytes) else scope[key] for key in keys}
        seen |= {"body": body.decode(), "state": scope["state"].get("started_by"), "asgi": scope["asgi"]}
        seen |= {"headers": [[n.decode(), v.decode()] for n, v in scope["headers"]], "client": scope["client"]}
        seen["server"] = scope["server"]
        await self.answer(send, orjson.dumps(seen))

    async def route_stream(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one", b"", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"three", "more_body": False})

    async def route_inject(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.read_body(receive)
        await self.answer(send, b"{}", [(b"x-note", b"a\r\nset-cookie: pwned=1")])

    async def route_bad_name(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.answer(send, b"{}", [(b"x-note:\r\nset-cookie", b"pwned=1")])

    async def route_boom(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("a bug in the app")

    async def route_boom_late(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("a bug in the app, half way through its answer")

    async def route_hold(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Wait for the client to go (the watch a streamed request keeps) or for ``release``."""
        await self.read_body(receive)
        waiting = asyncio.ensure_future(receive())
        released = asyncio.ensure_future(self.release.wait())
        await asyncio.wait([waiting, released], return_when=asyncio.FIRST_COMPLETED)
        if waiting.done():
            self.disconnects.append(waiting.result()["type"])
            self.disconnected.set()
            released.cancel()
            return
        waiting.cancel()
        await self.answer(send, b'{"released":true}')

    async def route_called_back(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Ask the server to call back when the client goes (``ON_DISCONNECT``), no ``receive`` waiting; with
        ``?withdrawn`` take the call back at once; answer on ``release``."""
        await self.read_body(receive)
        stop = scope["extensions"][ON_DISCONNECT](lambda: self.disconnects.append("called back"))
        if scope["query_string"] == b"withdrawn":
            stop()
        self.started.append("watching")
        await self.release.wait()
        await self.answer(send, b"{}")

    async def route_after(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.read_body(receive)
        await self.answer(send, b"{}")
        self.disconnects.append((await receive())["type"])  # the answer is whole: no more request

    async def route_flood(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """More than the socket buffers hold, in pieces: the writes must wait for the client to read."""
        piece = bytes(range(256)) * 4096  # 1 MiB
        pieces = 32
        head = [(b"content-length", b"%d" % (len(piece) * pieces))]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for left in range(pieces - 1, -1, -1):
            await send({"type": "http.response.body", "body": piece, "more_body": bool(left)})
        self.disconnects.append("flood sent")

    async def route_gate(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.release.wait()  # nothing is read until then: the server must stop reading the socket
        body = await self.read_body(receive)
        await self.answer(send, orjson.dumps({"length": len(body), "sum": sum(body[::4096])}))


class _RecordingTransport:
    """The connection's real transport; what is written to it is also kept in ``written``."""

    def __init__(self, real: asyncio.BaseTransport, written: list[bytes]) -> None:
        self._real = real
        self._written = written

    def write(self, data: bytes) -> None:
        self._written.append(bytes(data))
        self._real.write(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class RecordingProtocol(HttpProtocol):
    """AILB's protocol with each connection's transport writes recorded (``writes``) and the connections kept."""

    writes: list[list[bytes]]
    instances: list[HttpProtocol]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        written: list[bytes] = []
        self.writes.append(written)
        self.instances.append(self)
        super().connection_made(_RecordingTransport(transport, written))  # type: ignore[arg-type]


@dataclass
class Served:
    app: TestApp
    port: int
    server: uvicorn.Server
    writes: list[list[bytes]] = field(default_factory=list)
    instances: list[HttpProtocol] = field(default_factory=list)

    async def connect(self) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return Client(reader, writer)


@asynccontextmanager
async def serving(limits: HttpLimits | None = None) -> AsyncIterator[Served]:
    app = TestApp()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    writes: list[list[bytes]] = []
    instances: list[HttpProtocol] = []
    base = limited_protocol(limits or HttpLimits())
    protocol = type("Recording", (RecordingProtocol, base), {"writes": writes, "instances": instances})
    settings = Settings(enable_grpc=False, host="127.0.0.1", http_port=port)
    server = uvicorn.Server(server_config(app, settings, http=protocol, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started)
    try:
        yield Served(app, port, server, writes, instances)
    finally:
        server.should_exit = True
        async with asyncio.timeout(WAIT):
            await task
        sock.close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes


class Client:
    """A raw HTTP/1.1 client: writes bytes as given, reads answers by their framing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self) -> tuple[bytes, int, dict[str, str]]:
        async with asyncio.timeout(WAIT):
            raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                assert name.lower() not in headers, f"{name} twice in {raw!r}"
                headers[name.lower()] = value.strip()
        return raw, int(lines[0].split(" ")[1]), headers

    async def answer(self, bodyless: bool = False) -> Answer:
        raw, status, headers = await self.head()
        async with asyncio.timeout(WAIT):
            if bodyless or status in (204, 304) or status < 200:
                body = wire = b""
            elif "content-length" in headers:
                body = wire = await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding") == "chunked":
                body, wire = await self._chunks()
            else:
                body = wire = await self.reader.read()  # delimited by the end of the connection
        return Answer(status, headers, body, raw + wire)

    async def _chunks(self) -> tuple[bytes, bytes]:
        """The body, and the chunks as they came."""
        body = wire = b""
        while True:
            line = await self.reader.readuntil(b"\r\n")
            size = int(line[:-2], 16)
            chunk = await self.reader.readexactly(size + 2)
            assert chunk.endswith(b"\r\n")
            wire += line + chunk
            if not size:
                return body, wire
            body += chunk[:-2]

    async def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        async with asyncio.timeout(WAIT):
            return await self.reader.read()

    def close(self) -> None:
        self.writer.close()
