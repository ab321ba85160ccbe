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


class LineParser(SseData):
    """``SseData`` reading everything with the general line parser (the reference for its quick path)."""

    __slots__ = ()

    def _simple_datas(self, buffer: bytes, drop_names: bool = False) -> list[bytes] | None:
        return None


ODD_STREAMS = [
    SIMPLE,
    b"data: a\n\n\ndata: b\n\n",  # a blank line more
    b"data: a\n\n\n\ndata: b\n\n",
    b"data: a\ndata: b\n\ndata: c\n\n",  # an event of two lines
    b"data: a\n\nevent: named\ndata: b\n\ndata: c\n\n",
    b"data: a\n\n: comment\n\ndata: c\n\n",
    b"data:a\n\ndata: b\n\n",  # no space after the colon
    b"data: \n\ndata: \n\n",  # empty data
    b"data: a\r\n\r\ndata: b\n\n",
    b"data: a\n\ndata: b\n",  # the last one unterminated
    b"\n\ndata: a\n\n",
    b"id: 1\ndata: a\n\n",
    b"data: a\n\ndata",
    b"data: data: a\n\n",
    b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\ndata: 3\n\n",  # Anthropic's
    b"event: a\ndata: 1\n\ndata: 2\n\nevent: c\ndata: 3\n\n",
    b"event: a\nevent: b\ndata: 1\n\nevent: c\ndata: 2\n\n",
    b"event: a\ndata: 1\nevent: b\n\ndata: 2\n\n",  # after the data
    b"event: a\ndata: 1\n\nevent: b\n\ndata: 2\n\n",  # an event without data
    b"event: a\n\ndata: 1\n\n",
    b"event: a\ndata: 1\ndata: 2\n\nevent: b\ndata: 3\n\n",
    b"event:a\ndata: 1\n\nevent: b\ndata: 2\n\n",
    b'event: a\ndata: 1\n\nevent: b\ndata: {"event: x"}\n\n',
    b"event: a\ndata: 1\n\nid: 7\nevent: b\ndata: 2\n\n",
    b"event: a\r\ndata: 1\r\n\r\nevent: b\ndata: 2\n\n",
]


@pytest.mark.parametrize("raw", ODD_STREAMS)
def test_the_quick_split_gives_what_the_line_parser_gives(raw: bytes) -> None:
    for size in range(1, len(raw) + 1):
        quick, lines = SseData(), LineParser()
        got = [quick.feed(raw[start : start + size]) for start in range(0, len(raw), size)] + [quick.end()]
        want = [lines.feed(raw[start : start + size]) for start in range(0, len(raw), size)] + [lines.end()]
        assert got == want, (raw, size)  # read by read
