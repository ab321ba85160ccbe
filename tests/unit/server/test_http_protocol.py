"""AILB's HTTP/1.1 server protocol over real loopback sockets, served by uvicorn's ``Server`` as ``ailb serve`` does.

Each test speaks raw HTTP/1.1 to a raw ASGI app (``served.TestApp``) and checks the bytes that come back: the
ASGI semantics the app relies on, keep-alive and its ends, pipelining, HEAD, HTTP/1.0, ``Expect: 100-continue``,
chunked answers, client disconnects, app failures, header injection, and that a plain answer is one write.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ailb.settings import HttpLimits
from tests.polling import eventually
from tests.unit.server.served import WAIT, Client, Served, serving

pytestmark = pytest.mark.both_loops  # uvloop's transports differ from asyncio's; `ailb serve` runs on uvloop

BODY = b'{"model":"m","messages":[]}'


def post(path: str, body: bytes = BODY, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n%s" % (path.encode(), len(body), extra, body)


def get(path: str, extra: bytes = b"", version: bytes = b"1.1", method: bytes = b"GET") -> bytes:
    return b"%s %s HTTP/%s\r\nHost: t\r\n%s\r\n" % (method, path.encode(), version, extra)


@pytest.fixture
async def served() -> Served:  # type: ignore[misc]
    async with serving() as running:
        yield running


@pytest.fixture
async def client(served: Served) -> Client:  # type: ignore[misc]
    connection = await served.connect()
    yield connection
    connection.close()


async def test_a_request_reaches_the_app_with_the_asgi_scope(served: Served, client: Client) -> None:
    await client.send(post("/echo/a%20b?x=1&y=%20", extra=b"X-Custom: Value\r\n"))
    answer = await client.answer()
    assert answer.status == 200
    seen = orjson.loads(answer.body)
    assert seen["type"] == "http" and seen["method"] == "POST" and seen["http_version"] == "1.1"
    assert (seen["path"], seen["raw_path"], seen["query_string"]) == ("/echo/a b", "/echo/a%20b", "x=1&y=%20")
    assert seen["body"] == BODY.decode() and seen["state"] == "lifespan"  # the lifespan's state, copied
    assert ["x-custom", "Value"] in seen["headers"]  # names lower-cased, values as sent
    assert seen["scheme"] == "http" and seen["root_path"] == "" and seen["asgi"]["version"] == "3.0"
    assert seen["server"] == ["127.0.0.1", served.port] and seen["client"][0] == "127.0.0.1"
    assert "date" in answer.headers and answer.headers["content-length"] == str(len(answer.body))


async def test_a_plain_answer_is_one_write(served: Served, client: Client) -> None:
    await client.send(post("/echo"))
    answer = await client.answer()
    assert served.writes[0] == [answer.raw]  # head and body together


async def test_a_streamed_answer_is_chunked_its_head_going_with_the_first_body(served: Served, client: Client) -> None:
    await client.send(post("/stream"))
    answer = await client.answer()
    assert answer.headers["transfer-encoding"] == "chunked" and "content-length" not in answer.headers
    assert answer.body == b"onetwothree"
    writes = served.writes[0]
    assert writes[0].endswith(b"\r\n\r\n3\r\none\r\n")  # the head and the first chunk in one write
    assert writes[-1] == b"5\r\nthree\r\n0\r\n\r\n" and b"".join(writes) == answer.raw  # an empty body: no write
    assert len(writes) == 3


async def test_requests_on_a_kept_alive_connection_are_each_answered(served: Served, client: Client) -> None:
    for n in range(3):
        await client.send(post(f"/echo?n={n}"))
        answer = await client.answer()
        assert orjson.loads(answer.body)["query_string"] == f"n={n}" and "connection" not in answer.headers
    assert len(served.writes) == 1


async def test_pipelined_requests_are_answered_in_order(served: Served, client: Client) -> None:
    await client.send(post("/echo?n=1") + post("/stream") + get("/echo?n=3") + post("/echo?n=4", b"x" * 100_000))
    first, second, third, fourth = [await client.answer() for _ in range(4)]
    assert orjson.loads(first.body)["query_string"] == "n=1"
    assert second.body == b"onetwothree"
    assert orjson.loads(third.body)["query_string"] == "n=3" and orjson.loads(third.body)["body"] == ""
    assert len(orjson.loads(fourth.body)["body"]) == 100_000
    assert served.app.started == ["/echo?n=1", "/stream", "/echo?n=3", "/echo?n=4"]


async def test_connection_close_from_the_client_ends_the_connection(client: Client) -> None:
    await client.send(post("/echo", extra=b"Connection: close\r\n"))
    answer = await client.answer()
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert await client.rest() == b""


async def test_http_1_0_gets_its_answer_and_the_connection_closes(client: Client) -> None:
    await client.send(get("/stream", version=b"1.0"))
    answer = await client.answer()
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert "transfer-encoding" not in answer.headers  # no chunks for HTTP/1.0: the body ends with the connection
    assert answer.body == b"onetwothree"


async def test_http_1_0_with_a_length(client: Client) -> None:
    await client.send(get("/echo", version=b"1.0"))
    answer = await client.answer()
    assert orjson.loads(answer.body)["http_version"] == "1.0" and answer.headers["connection"] == "close"
    assert await client.rest() == b""


async def test_head_gets_the_headers_without_a_body(client: Client) -> None:
    await client.send(get("/echo", method=b"HEAD"))
    answer = await client.answer(bodyless=True)
    assert answer.status == 200 and int(answer.headers["content-length"]) > 0
    await client.send(get("/stream", method=b"HEAD"))
    streamed = await client.answer(bodyless=True)
    assert "transfer-encoding" not in streamed.headers
    await client.send(post("/echo"))  # nothing of a body was sent before: the next answer is read cleanly
    assert orjson.loads((await client.answer()).body)["method"] == "POST"


async def test_expect_100_continue_is_answered_when_the_app_reads(client: Client) -> None:
    await client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    )
    interim = await client.answer()
    assert interim.status == 100 and interim.raw == b"HTTP/1.1 100 Continue\r\n\r\n"
    await client.send(BODY)
    answer = await client.answer()
    assert orjson.loads(answer.body)["body"] == BODY.decode()


async def test_an_upgrade_request_is_answered_as_plain_http(client: Client) -> None:
    await client.send(get("/echo", extra=b"Connection: Upgrade\r\nUpgrade: websocket\r\n"))
    answer = await client.answer()
    assert answer.status == 200 and orjson.loads(answer.body)["path"] == "/echo"
    assert answer.headers["connection"] == "close"
    assert await client.rest() == b""


async def test_an_upgrade_request_pipelined_behind_another_is_answered_too(served: Served, client: Client) -> None:
    await client.send(post("/hold") + get("/echo?n=2", extra=b"Connection: Upgrade\r\nUpgrade: h2c\r\n"))
    await eventually(lambda: bool(served.app.started))
    served.app.release.set()
    assert (await client.answer()).body == b'{"released":true}'
    answer = await client.answer()
    assert orjson.loads(answer.body)["query_string"] == "n=2" and answer.headers["connection"] == "close"
    assert await client.rest() == b""


async def test_a_header_value_with_a_line_break_is_refused(served: Served, client: Client) -> None:
    await client.send(post("/inject"))
    answer = await client.answer()
    assert answer.status == 500 and b"pwned" not in answer.raw
    assert orjson.loads(answer.body)["error"]["code"] == "internal_error"
    assert await client.rest() == b""


async def test_a_header_name_with_a_line_break_is_refused(client: Client) -> None:
    await client.send(get("/bad-name"))
    answer = await client.answer()
    assert answer.status == 500 and b"pwned" not in answer.raw


async def test_an_app_failure_before_its_answer_is_a_500_in_openai_shape(client: Client) -> None:
    await client.send(get("/boom"))
    answer = await client.answer()
    assert answer.status == 500 and answer.headers["connection"] == "close"
    assert set(orjson.loads(answer.body)["error"]) == {"message", "type", "param", "code"}
    assert b"a bug" not in answer.raw


async def test_an_app_failure_half_way_through_closes_the_connection(client: Client) -> None:
    await client.send(get("/boom-late"))
    _, status, headers = await client.head()
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert await client.rest() == b"7\r\npartial\r\n"  # no last chunk: the client can tell the answer is broken


async def test_a_client_that_leaves_is_a_disconnect_for_the_app(served: Served, client: Client) -> None:
    await client.send(post("/hold"))
    await eventually(lambda: bool(served.app.started))
    client.close()
    async with asyncio.timeout(WAIT):
        await served.app.disconnected.wait()
    assert served.app.disconnects == ["http.disconnect"]


async def test_a_client_that_leaves_calls_the_app_back_when_it_asked(served: Served, client: Client) -> None:
    await client.send(post("/called-back"))
    await eventually(lambda: "watching" in served.app.started)
    client.close()
    await eventually(lambda: bool(served.app.disconnects))
    assert served.app.disconnects == ["called back"]
    served.app.release.set()


async def test_a_call_back_taken_back_or_after_the_answer_is_not_made(served: Served, client: Client) -> None:
    await client.send(post("/called-back?withdrawn"))
    await eventually(lambda: "watching" in served.app.started)
    client.close()
    served.app.release.set()
    again = await served.connect()
    await again.send(post("/called-back"))  # answered (released), then the client leaves
    assert (await again.answer()).status == 200
    again.close()
    await eventually(lambda: len(served.instances) == 2 and not served.server.server_state.connections)
    await asyncio.sleep(0.05)  # a call back would be made at once, on the loop
    assert served.app.disconnects == []


async def test_after_the_answer_the_app_hears_a_disconnect(served: Served, client: Client) -> None:
    await client.send(post("/after"))
    await client.answer()
    await eventually(lambda: bool(served.app.disconnects))
    assert served.app.disconnects == ["http.disconnect"]


async def test_a_body_the_app_does_not_read_stops_the_reading(served: Served, client: Client) -> None:
    body = bytes(range(256)) * 16384  # 4 MiB: more than the socket buffers hold
    client.writer.write(post("/gate", body))
    await eventually(lambda: bool(served.instances) and served.instances[0].read_paused)
    served.app.release.set()
    async with asyncio.timeout(WAIT):
        await client.writer.drain()
    answer = await client.answer()
    assert orjson.loads(answer.body) == {"length": len(body), "sum": sum(body[::4096])}


async def test_an_answer_the_client_does_not_read_waits_for_it(served: Served, client: Client) -> None:
    await client.send(get("/flood"))
    await eventually(lambda: bool(served.instances) and served.instances[0].write_paused)
    assert served.app.disconnects == []  # the app waits in its send: the rest is not buffered in the process
    answer = await client.answer()
    assert answer.body == bytes(range(256)) * 4096 * 32
    assert served.app.disconnects == ["flood sent"]


async def test_a_graceful_shutdown_lets_an_answer_finish_then_closes(served: Served) -> None:
    busy, idle = await served.connect(), await served.connect()
    await busy.send(post("/hold"))
    await idle.send(post("/echo"))
    await idle.answer()
    served.server.should_exit = True
    assert await idle.rest() == b""  # an idle connection is closed at once
    served.app.release.set()
    answer = await busy.answer()
    assert answer.body == b'{"released":true}' and answer.headers["connection"] == "close"
    assert await busy.rest() == b""


async def test_bytes_that_are_not_http_get_a_400() -> None:
    async with serving(HttpLimits(header_timeout=5)) as served:
        client = await served.connect()
        await client.send(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await client.answer()
        assert answer.status == 400 and orjson.loads(answer.body)["error"]["code"] == "invalid_http_request"
        assert await client.rest() == b""


async def test_a_kept_alive_connection_idle_too_long_is_closed() -> None:
    async with serving(HttpLimits(keepalive_timeout=0.3, header_timeout=5)) as served:
        client = await served.connect()
        for _ in range(2):
            await client.send(post("/echo"))
            assert (await client.answer()).status == 200
        assert await client.rest() == b""  # closed without a word


async def test_the_next_head_on_a_kept_alive_connection_has_its_own_deadline() -> None:
    async with serving(HttpLimits(keepalive_timeout=30, header_timeout=0.3)) as served:
        client = await served.connect()
        await client.send(post("/echo"))
        assert (await client.answer()).status == 200
        await client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\n")  # and the rest never comes
        answer = await client.answer()
        assert answer.status == 408 and orjson.loads(answer.body)["error"]["code"] == "request_timeout"


async def test_a_bad_request_on_a_kept_alive_connection_gets_a_400(client: Client) -> None:
    await client.send(post("/echo"))
    assert (await client.answer()).status == 200
    await client.send(get("http://[::1"))  # a target the parser lets through, but not a URL
    answer = await client.answer()
    assert answer.status == 400 and orjson.loads(answer.body)["error"]["code"] == "invalid_http_request"
    assert await client.rest() == b""
