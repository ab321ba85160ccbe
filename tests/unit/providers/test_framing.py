"""The SSE and NDJSON splitters: the frames whatever the cut of the pieces, the simple and the general form."""

from __future__ import annotations

import pytest

from ailb.errors import UpstreamProtocolError
from ailb.providers import framing
from ailb.providers.framing import NdjsonLines, SseData, SseSplitter

SIMPLE = b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
GENERAL = b'event: ping\ndata: x\r\n\r\n: comment\ndata: one\ndata: two\n\ndata:{"c":3}\n\n'


def split(splitter: SseSplitter, raw: bytes, size: int) -> list[tuple[str, bytes]]:
    events = []
    for start in range(0, len(raw), size):
        events += splitter.feed_events(raw[start : start + size])
    return events + splitter.end_events()


@pytest.mark.parametrize("size", [1, 2, 5, 7, 1000])
def test_simple_events_whatever_the_pieces(size: int) -> None:
    assert split(SseSplitter(), SIMPLE, size) == [("", b'{"a":1}'), ("", b'{"b":2}'), ("", b"[DONE]")]


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_general_events_whatever_the_pieces(size: int) -> None:
    expected = [("ping", b"x"), ("", b"one\ntwo"), ("", b'{"c":3}')]
    assert split(SseSplitter(), GENERAL, size) == expected


def test_simple_then_general_in_one_piece() -> None:
    assert split(SseSplitter(), SIMPLE + GENERAL, 1000)[3:] == [("ping", b"x"), ("", b"one\ntwo"), ("", b'{"c":3}')]


def test_a_last_event_without_its_blank_line_still_counts() -> None:
    splitter = SseData()
    assert splitter.feed(b'data: {"a":1}\n\ndata: {"b":2}\n') == [b'{"a":1}']
    assert splitter.end() == [b'{"b":2}']


def test_an_endless_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framing, "MAX_STREAM_LINE", 16)
    with pytest.raises(UpstreamProtocolError):
        SseData("dep").feed(b"data: " + b"x" * 40)
    with pytest.raises(UpstreamProtocolError):
        SseData("dep").feed(b"data: a\n\ndata: " + b"x" * 40)


def test_ndjson_lines() -> None:
    splitter = NdjsonLines()
    assert splitter.feed(b'{"a":1}\n\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n") == [b'{"b":2}']
    assert splitter.feed(b'{"c":3}') == []
    assert splitter.end() == [b'{"c":3}']
