from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from ailb.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from ailb.http.parsing import ClientDisconnected, header, read_body


def request(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers or []}
    return Request(scope, receive)


def part(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_in_pieces_is_joined() -> None:
    pieces = [part(b'{"a":', more=True), part(b"", more=True), part(b"1}")]
    assert await read_body(request(pieces), 100) == b'{"a":1}'


async def test_a_body_over_the_limit_is_refused_while_reading() -> None:
    with pytest.raises(PayloadTooLargeError):
        await read_body(request([part(b"x" * 60, more=True), part(b"x" * 60)]), 100)


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLargeError):
        await read_body(request([], [(b"content-length", b"101")]), 100)


async def test_a_client_that_leaves_mid_body_is_noted_with_how_far_it_came() -> None:
    gone = request([part(b"12345", more=True), {"type": "http.disconnect"}], [(b"content-length", b"50")])
    with pytest.raises(ClientDisconnected, match="after 5 of 50 body bytes"):
        await read_body(gone, 100)


@pytest.mark.parametrize("content_type", [b"text/plain", b"application/x-www-form-urlencoded"])
async def test_only_json_bodies_are_read(content_type: bytes) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        await read_body(request([part(b"{}")], [(b"content-type", content_type)]), 100)


@pytest.mark.parametrize(
    "content_type", [b"application/json; charset=utf-8", b"Application/JSON", b"application/vnd.x+json"]
)
async def test_json_content_types_in_any_spelling_are_read(content_type: bytes) -> None:
    assert await read_body(request([part(b"{}")], [(b"content-type", content_type)]), 100) == b"{}"


def test_a_header_is_its_first_value_as_starlette_gives_it() -> None:
    repeated = request([], [(b"x-session-id", b"first"), (b"x-session-id", b"second"), (b"x-other", b"\xe9")])
    assert header(repeated, b"x-session-id") == repeated.headers.get("x-session-id") == "first"
    assert header(repeated, b"x-other") == repeated.headers.get("x-other") == "\xe9"
    assert header(repeated, b"x-absent") is None
