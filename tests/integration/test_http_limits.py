"""HTTP-level limits over raw sockets against the real server (uvicorn + AILB's protocol, on loopback).

Oversized or too many header fields get a 431, a client that sends nothing is dropped, one that sends its head
or body too slowly gets a 408, an idle kept-alive connection is closed, and connections beyond the cap get a
503. Each test would hang (and fail on its socket timeout) against a server without the limit.
"""

from __future__ import annotations

import socket
import threading
import time

import orjson
import pytest

from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import Upstreams

LIMITS = {
    "MAX_HEADER_BYTES": "65536",
    "MAX_HEADERS": "100",
    "HEADER_TIMEOUT": "1",
    "BODY_TIMEOUT": "1",
    "KEEPALIVE_TIMEOUT": "1",
    "MAX_CONNECTIONS": "4",
}
WAIT = 8.0  # socket timeout: far beyond every limit above, far below "forever"
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture
def gateway(run_gateway: GatewayFactory, upstreams: Upstreams) -> RunningGateway:
    upstreams.reset()
    return run_gateway({**upstreams.env(), **LIMITS})


def _connect(gateway: RunningGateway) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", gateway.port), timeout=WAIT)
    client.settimeout(WAIT)
    return client


def _read_all(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def _read_response(client: socket.socket) -> bytes:
    """One whole response with a Content-Length body (the connection stays open)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += client.recv(65536) or _closed()
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    while len(body) < length:
        body += client.recv(65536) or _closed()
    return head + b"\r\n\r\n" + body


def _closed() -> bytes:
    raise AssertionError("the server closed the connection before its answer was whole")


def _status_and_body(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body) if body else {}


def _error_code(response: bytes, status: int) -> str:
    got, body = _status_and_body(response)
    assert got == status, response[:300]
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
    return str(error["code"])


def test_a_head_over_the_size_limit_is_refused_before_it_ends(gateway: RunningGateway) -> None:
    with _connect(gateway) as client:
        client.sendall(HEALTH + b"X-Filler: " + b"a" * 70_000)  # never finished: the server must not wait for it
        response = _read_all(client)
    assert _error_code(response, 431) == "request_header_fields_too_large"
    assert b"connection: close" in response.lower()


def test_a_head_just_under_the_limit_is_served(gateway: RunningGateway) -> None:
    with _connect(gateway) as client:
        client.sendall(HEALTH + b"X-Filler: " + b"a" * 60_000 + b"\r\nConnection: close\r\n\r\n")
        response = _read_all(client)
    assert response.startswith(b"HTTP/1.1 200 ")


def test_too_many_header_fields_are_refused(gateway: RunningGateway) -> None:
    fields = b"".join(b"x-field-%d: v\r\n" % i for i in range(150))
    with _connect(gateway) as client:
        client.sendall(HEALTH + fields + b"\r\n")
        response = _read_all(client)
    assert _error_code(response, 431) == "too_many_header_fields"


def test_a_large_body_arriving_with_its_head_is_not_mistaken_for_a_large_head(gateway: RunningGateway) -> None:
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 300_000}]})
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with _connect(gateway) as client:
        client.sendall(head + body)
        response = _read_all(client)
    assert response.startswith(b"HTTP/1.1 200 "), response[:300]


def test_a_connection_that_sends_nothing_is_closed(gateway: RunningGateway) -> None:
    with _connect(gateway) as client:
        assert _read_all(client) == b""  # closed without an answer: nothing was asked


def _drip(client: socket.socket, data: bytes, pause: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.is_set():
            return
        try:
            client.send(bytes([byte]))
        except OSError:
            return
        time.sleep(pause)


def test_a_head_sent_one_byte_at_a_time_times_out(gateway: RunningGateway) -> None:
    stop = threading.Event()
    with _connect(gateway) as client:
        sender = threading.Thread(target=_drip, args=(client, HEALTH * 20, 0.1, stop), daemon=True)
        sender.start()
        try:
            response = _read_all(client)
        finally:
            stop.set()
            sender.join(5)
    assert _error_code(response, 408) == "request_timeout"


def test_a_body_that_stalls_times_out_and_counts_as_a_client_disconnect(gateway: RunningGateway) -> None:
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5000\r\n\r\n"
    )
    with _connect(gateway) as client:
        client.sendall(head + b'{"model"')
        response = _read_all(client)
    assert _error_code(response, 408) == "request_timeout"
    deadline = time.monotonic() + 5
    while gateway.gateway.metrics.render()[0].find(b'status="499"') < 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b'status="499"' in gateway.gateway.metrics.render()[0]


def test_an_idle_kept_alive_connection_is_closed(gateway: RunningGateway) -> None:
    with _connect(gateway) as client:
        client.sendall(HEALTH + b"\r\n")
        first = _read_response(client)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" not in first.lower()
        client.settimeout(3.0)  # beyond KEEPALIVE_TIMEOUT, short of uvicorn's own default of 5 s
        assert _read_all(client) == b""  # then nothing more, and the server closes


def test_connections_beyond_the_cap_get_a_503_and_a_freed_slot_is_reused(gateway: RunningGateway) -> None:
    held = [_connect(gateway) for _ in range(4)]
    try:
        for client in held:  # each is served, so each is open on the server's side
            client.sendall(HEALTH + b"\r\n")
            assert _read_response(client).startswith(b"HTTP/1.1 200 ")
        with _connect(gateway) as extra:
            response = _read_all(extra)
        assert _error_code(response, 503) == "too_many_connections"
        assert b"retry-after: 1" in response.lower()
    finally:
        for client in held:
            client.close()
    deadline = time.monotonic() + 5
    while True:
        with _connect(gateway) as client:
            client.sendall(HEALTH + b"Connection: close\r\n\r\n")
            response = _read_all(client)
        if response.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.startswith(b"HTTP/1.1 200 ")


def test_requests_on_one_kept_alive_connection_each_get_their_answer(gateway: RunningGateway) -> None:
    with _connect(gateway) as client:
        for _ in range(5):
            client.sendall(HEALTH + b"\r\n")
            assert _read_response(client).startswith(b"HTTP/1.1 200 ")
        client.sendall(HEALTH + b"\r\n" + HEALTH + b"Connection: close\r\n\r\n")  # two requests at once
        pipelined = _read_all(client)
    assert pipelined.count(b"HTTP/1.1 200 ") == 2
