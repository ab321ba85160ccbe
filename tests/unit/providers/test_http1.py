"""The upstream HTTP/1.1 client over real loopback sockets, byte by byte.

The server here is a raw asyncio server that replays scripted bytes, so every way an upstream can frame, delay,
compress, break or close an answer is reached exactly; ``Transport`` is driven as the adapters drive it.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import pytest
import trustme

from ailb.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamStatusError, UpstreamTimeoutError
from ailb.providers import http1, pool
from ailb.providers.framing import SseData
from ailb.providers.http1 import Origin, header_lines
from ailb.providers.openai.response import status_error
from ailb.providers.openai.stream import OpenAIStream
from ailb.providers.relay import relay
from ailb.providers.transport import Transport
from ailb.redaction import SecretSet
from ailb.settings import DeploymentConfig, Timeouts

pytestmark = pytest.mark.both_loops  # uvloop's transports differ from asyncio's; `ailb serve` runs on uvloop

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Upstream:
    """A loopback server answering each request with the next scripted reply; it records what it saw."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:  # until the client closes the connection, or a reply closes it
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head + await reader.readexactly(_content_length(head)))
                await self.replies.pop(0)(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_client.set()
        finally:
            writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def silence(seconds: float) -> Reply:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(seconds)

    return reply


def send(*parts: bytes, pause: float = 0.0, close: bool = False) -> Reply:
    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        if close:
            writer.close()

    return reply


def json_reply(body: object, status: int = 200, extra: bytes = b"") -> Reply:
    raw = orjson.dumps(body)
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n" % (status, b"OK" if status == 200 else b"Error")
    return send(head + extra + b"Content-Length: %d\r\n\r\n" % len(raw) + raw)


def chunked(*events: bytes, pause: float = 0.0) -> Reply:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    frames = [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
    return send(head, *frames, b"0\r\n\r\n", pause=pause)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    scripted = Upstream()
    server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield scripted, f"http://127.0.0.1:{port}/v1"
    server.close()
    for writer in scripted.writers:
        writer.close()


def transport(base_url: str, **timeouts: float) -> Transport:
    limits = {"connect": 2.0, "first_token": 5.0, "idle": 5.0, "total": 10.0, **timeouts}
    config = DeploymentConfig("east", "openai", base_url, api_key="sk-x", timeouts=Timeouts(**limits))
    return Transport(config, {"Authorization": "Bearer sk-x"}, status_error, lambda text: text)


async def read_stream(client: Transport) -> list[bytes]:
    async with client.open_stream("/chat/completions", b"{}") as pieces:
        return [piece async for piece in pieces]


async def test_a_request_carries_the_base_path_host_headers_and_body_and_the_connection_is_reused(
    upstream: tuple[Upstream, str],
) -> None:
    server, url = upstream
    server.replies += [json_reply({"n": 1}), json_reply({"n": 2})]
    client = transport(url)
    assert await client.post_json("/chat/completions", b'{"model":"m"}') == {"n": 1}
    raw, parsed = await client.post_json_raw("/chat/completions", b"{}")
    assert (raw, parsed) == (b'{"n":2}', {"n": 2})
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    port = url.split(":")[2].split("/")[0]
    for line in (b"Host: 127.0.0.1:" + port.encode(), b"Authorization: Bearer sk-x", b"Content-Length: 13"):
        assert line in first.split(b"\r\n")
    assert first.endswith(b'\r\n\r\n{"model":"m"}')
    assert server.connections == 1
    await client.aclose()


async def test_a_chunked_stream_arrives_in_pieces_and_the_connection_goes_back_to_the_pool(
    upstream: tuple[Upstream, str],
) -> None:
    server, url = upstream
    server.replies += [chunked(b"data: 1\n\n", b"data: 2\n\n", pause=0.01), json_reply({"ok": True})]
    client = transport(url)
    pieces = await read_stream(client)
    assert b"".join(pieces) == b"data: 1\n\ndata: 2\n\n" and len(pieces) == 2
    assert await client.get_json("/models") == {"ok": True}
    assert server.requests[1].startswith(b"GET /v1/models HTTP/1.1\r\n") and b"Content-Length" not in server.requests[1]
    assert server.connections == 1


async def test_a_body_ended_by_closing_the_connection_is_whole(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.replies += [send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", b'{"a":', b"1}", close=True)]
    client = transport(url)
    assert await client.post_json("/x", b"{}") == {"a": 1}
    server.replies += [json_reply({"b": 2})]
    assert await client.post_json("/x", b"{}") == {"b": 2}
    assert server.connections == 2


async def test_connection_close_is_honoured_and_an_idle_connection_the_upstream_closed_is_not_reused(
    upstream: tuple[Upstream, str],
) -> None:
    server, url = upstream
    server.replies += [json_reply({"n": 1}, extra=b"Connection: close\r\n"), json_reply({"n": 2})]
    client = transport(url)
    assert await client.post_json("/x", b"{}") == {"n": 1}
    assert await client.post_json("/x", b"{}") == {"n": 2}
    assert server.connections == 2
    server.writers[-1].close()  # the upstream drops the idle keep-alive connection
    await asyncio.sleep(0.05)
    server.replies += [json_reply({"n": 3})]
    assert await client.post_json("/x", b"{}") == {"n": 3}
    assert server.connections == 3


async def test_a_request_dropped_without_an_answer_is_not_sent_again(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.replies += [json_reply({"n": 1}), send(close=True), json_reply({"n": 2})]
    client = transport(url)
    assert await client.post_json("/x", b"{}") == {"n": 1}
    with pytest.raises(UpstreamConnectionError, match="dropped the connection"):
        await client.post_json("/x", b"{}")  # it may have been read: the router decides whether to try again
    assert len(server.requests) == 2
    assert await client.post_json("/x", b"{}") == {"n": 2}  # on a new connection
    assert server.connections == 2


async def test_idle_connections_past_the_keep_alive_time_are_closed_while_traffic_goes_on(
    upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = upstream
    monkeypatch.setattr(pool, "KEEP_ALIVE_SECONDS", 0.3)
    server.replies += [json_reply({"n": n}) for n in range(4)]
    client = transport(url)
    await asyncio.gather(client.post_json("/x", b"{}"), client.post_json("/x", b"{}"))  # two connections, now idle
    await asyncio.sleep(0.2)
    await client.post_json("/x", b"{}")  # the warmer one is reused; the colder one is not old enough yet
    assert not server.closed_by_client.is_set()
    await asyncio.sleep(0.15)
    await client.post_json("/x", b"{}")
    await asyncio.wait_for(server.closed_by_client.wait(), 5)  # the colder one, never reached, was closed
    assert server.connections == 2


async def test_a_reader_that_falls_behind_stops_the_socket_being_read(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    event = b"x" * 65536
    server.replies += [chunked(*([event] * 256))]  # 16 MB, far more than the client buffers and the kernel holds
    client = transport(url)
    async with client.open_stream("/chat/completions", b"{}") as pieces:
        first = await anext(pieces)
        await asyncio.sleep(0.3)
        assert server.writers[0].transport.get_write_buffer_size() > 0  # the upstream waits: no one reads it
        rest = [piece async for piece in pieces]
    assert len(first) + sum(len(piece) for piece in rest) == 256 * len(event)
    await client.aclose()


async def test_gzip_answers_are_decoded(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    body = gzip.compress(b'{"zipped": true}')
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)
    server.replies += [send(head + body)]
    assert await transport(url).post_json("/x", b"{}") == {"zipped": True}
    assert b"Accept-Encoding: gzip, deflate" in server.requests[0]


async def test_an_error_status_becomes_the_adapters_error_with_retry_after(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    error = {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}}
    server.replies += [json_reply(error, status=429, extra=b"retry-after-ms: 1500\r\n")]
    with pytest.raises(UpstreamStatusError) as raised:
        await transport(url).post_json("/x", b"{}")
    assert raised.value.status == 429 and raised.value.retry_after == 1.5


async def test_an_answer_cut_short_is_a_dropped_connection(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.replies += [send(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial":', close=True)]
    with pytest.raises(UpstreamConnectionError, match="'east' dropped the connection"):
        await transport(url).post_json("/x", b"{}")
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server.replies += [send(head, b"9\r\ndata: 1\n\n\r\n", close=True)]
    got: list[bytes] = []
    with pytest.raises(UpstreamConnectionError, match="dropped the connection"):
        async with transport(url).open_stream("/x", b"{}") as pieces:
            async for piece in pieces:
                got.append(piece)
    assert got == [b"data: 1\n\n"]


async def test_bytes_that_are_not_http_are_a_protocol_error(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.replies += [send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")]
    with pytest.raises(UpstreamProtocolError, match=r"'east' sent an answer that is not HTTP/1\.1"):
        await transport(url).post_json("/x", b"{}")
    server.replies += [send(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}")]
    with pytest.raises(UpstreamProtocolError):
        await transport(url).post_json("/x", b"{}")
    endless_head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: %s\r\n" % (b"y" * 1000) * 100
    server.replies += [send(endless_head)]
    with pytest.raises(UpstreamProtocolError):
        await transport(url).post_json("/x", b"{}")


async def test_a_refused_connection_and_an_unreachable_host_map_to_connection_errors() -> None:
    idle = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = idle.sockets[0].getsockname()[1]
    idle.close()
    await idle.wait_closed()
    with pytest.raises(UpstreamConnectionError, match="'east' refused the connection"):
        await transport(f"http://127.0.0.1:{port}").post_json("/x", b"{}")
    with pytest.raises(UpstreamConnectionError, match="could not be reached"):
        await transport("http://no-such-host.invalid").post_json("/x", b"{}")


async def test_stream_timeouts_name_what_never_came(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.replies += [silence(1)]
    with pytest.raises(UpstreamTimeoutError, match=r"'east' sent no first token within 0\.2s"):
        await read_stream(transport(url, first_token=0.2))  # not even the headers
    server.replies += [send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", pause=1)]
    with pytest.raises(UpstreamTimeoutError, match=r"'east' sent no first token within 0\.2s"):
        await read_stream(transport(url, first_token=0.2))
    server.replies += [send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"3\r\nabc\r\n", pause=1)]
    with pytest.raises(UpstreamTimeoutError, match=r"sent no next chunk within 0\.2s"):
        await read_stream(transport(url, idle=0.2))
    server.replies += [chunked(b"data: 1\n\n", b"data: 2\n\n", pause=0.5)]
    with pytest.raises(UpstreamTimeoutError, match=r"sent no next chunk within 0\.2s"):
        await read_stream(transport(url, idle=0.2))  # the first token's longer limit does not hold for the gaps
    server.replies += [chunked(*(b"x" for _ in range(20)), pause=0.05)]
    with pytest.raises(UpstreamTimeoutError, match=r"sent no whole answer within 0\.3s"):
        await read_stream(transport(url, total=0.3))
    server.replies += [send(b"HTTP/1.1 200 OK\r\n\r\n", b"data: 1\n\n", pause=1)]
    with pytest.raises(UpstreamTimeoutError, match=r"sent no next chunk within 0\.2s"):
        async with transport(url, idle=0.2).open_stream("/x", b"{}") as pieces:
            assert await anext(pieces) == b"data: 1\n\n"
            await asyncio.sleep(0.5)  # busy elsewhere when the timeout closes a body that ends with its connection
            await anext(pieces)
    server.replies += [silence(1)]
    with pytest.raises(UpstreamTimeoutError, match=r"'east' timed out"):
        await transport(url, total=0.2).post_json("/x", b"{}")


async def test_leaving_a_stream_early_closes_its_connection(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.replies += [chunked(*(b"data: %d\n\n" % n for n in range(50)), pause=0.02), json_reply({"n": 2})]
    client = transport(url)
    async with client.open_stream("/x", b"{}") as pieces:
        async for _ in pieces:
            break
    await asyncio.wait_for(server.closed_by_client.wait(), 5)
    assert await client.post_json("/x", b"{}") == {"n": 2}
    assert server.connections == 2


def late_end(*events: bytes, after: bytes = b"", end_after: float = 0.05) -> Reply:
    """A chunked stream whose terminating chunk comes apart from (and ``end_after`` seconds after) its events and
    ``after`` (more body), as uvicorn and Go's net/http write it; None: it never comes."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    frames = b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in events)

    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head + frames)
        await writer.drain()
        await asyncio.sleep(end_after)
        if after:
            writer.write(b"%x\r\n%s\r\n" % (len(after), after))
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return reply


async def read_until_done(client: Transport) -> bytes:
    """A stream read up to its ``[DONE]`` event, then left as the relay leaves it (``answered``)."""
    seen = b""
    async with client.open_stream("/chat/completions", b"{}") as pieces:
        async for piece in pieces:
            seen += piece
            if seen.endswith(b"data: [DONE]\n\n"):
                pieces.answered()
                break
    return seen


async def test_a_stream_left_once_answered_keeps_its_connection_when_its_body_ends_soon_after(
    upstream: tuple[Upstream, str],
) -> None:
    server, url = upstream
    server.replies += [late_end(b"data: 1\n\n", b"data: [DONE]\n\n"), json_reply({"n": 2})]
    client = transport(url)
    assert await read_until_done(client) == b"data: 1\n\ndata: [DONE]\n\n"
    await asyncio.sleep(0.2)  # the terminating chunk came meanwhile
    assert await client.post_json("/x", b"{}") == {"n": 2}
    assert server.connections == 1 and not server.closed_by_client.is_set()


@pytest.mark.parametrize(
    "reply",
    [
        late_end(b"data: [DONE]\n\n", end_after=1.0),  # the body's end comes too late
        late_end(b"data: [DONE]\n\n", after=b"x" * (http1._FINISH_BYTES + 1)),  # too much comes before it
    ],
    ids=["late", "too much"],
)
async def test_a_stream_left_once_answered_is_closed_when_its_body_does_not_end_soon(
    upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch, reply: Reply
) -> None:
    server, url = upstream
    monkeypatch.setattr(http1, "FINISH_SECONDS", 0.3)
    server.replies += [reply, json_reply({"n": 2})]
    client = transport(url)
    await read_until_done(client)
    await asyncio.wait_for(server.closed_by_client.wait(), 5)
    assert await client.post_json("/x", b"{}") == {"n": 2}
    assert server.connections == 2


async def test_the_relay_keeps_the_connection_of_a_stream_whose_body_ends_after_its_last_event(
    upstream: tuple[Upstream, str],
) -> None:
    server, url = upstream
    answer = b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
    server.replies += [late_end(answer, b"data: [DONE]\n\n"), late_end(answer, b"data: [DONE]\n\n")]
    client = transport(url)
    for _ in range(2):
        chunks = relay(client, "/chat/completions", b"{}", SseData, OpenAIStream(False, "east"), SecretSet())
        assert "".join([chunk.text async for chunk in chunks]) == "hi"
        await asyncio.sleep(0.2)
    assert server.connections == 1


async def test_cancelling_a_call_closes_its_connection(upstream: tuple[Upstream, str]) -> None:
    server, url = upstream
    server.replies += [silence(5)]
    call = asyncio.ensure_future(transport(url).post_json("/x", b"{}"))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(server.closed_by_client.wait(), 5)


async def test_tls_is_verified_against_the_trusted_authorities(monkeypatch: pytest.MonkeyPatch) -> None:
    authority = trustme.CA()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(served)
    scripted = Upstream(replies=[json_reply({"secure": True})])
    server = await asyncio.start_server(scripted.serve, "127.0.0.1", 0, ssl=served)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    monkeypatch.setattr(pool, "_TLS_CONTEXT", None)
    with pytest.raises(UpstreamConnectionError, match="could not be reached"):
        await transport(url).post_json("/x", b"{}")  # an authority this machine does not trust
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    monkeypatch.setattr(pool, "_TLS_CONTEXT", trusted)
    assert await transport(url).post_json("/x", b"{}") == {"secure": True}
    assert b"Host: 127.0.0.1:" in scripted.requests[0]
    server.close()
    for writer in scripted.writers:
        writer.close()


def test_origins_and_header_lines() -> None:
    assert Origin.of("https://api.openai.com/v1/") == Origin("api.openai.com", 443, True, "api.openai.com", "/v1")
    assert Origin.of("http://[::1]:8080") == Origin("::1", 8080, False, "[::1]:8080", "")
    with pytest.raises(ValueError):
        Origin.of("ftp://example.com")
    assert header_lines({"x-api-key": "k"}) == b"x-api-key: k\r\n"
    with pytest.raises(ValueError):
        header_lines({"Authorization": "Bearer k\r\nX-Injected: 1"})
