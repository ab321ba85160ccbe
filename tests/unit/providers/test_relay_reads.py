"""The relay's read-at-once path for OpenAI streams (``OpenAIStream.feed_read``) gives exactly what feeding the
events one at a time gives: the same chunks (frames, texts, usage, finish reasons), the same errors at the same
place, the same scrubbing, however the body is cut into reads."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from ailb import errors
from ailb.contract import StreamChunk, Usage
from ailb.providers.framing import SseData
from ailb.providers.openai.stream import ContentTemplate, OpenAIStream, read_events
from ailb.providers.relay import relay
from ailb.redaction import SecretSet
from tests.spies import record_calls

KEY = "sk-Echoed-Key-7f3a9c"
SECRETS = SecretSet([KEY])


class Recorded:
    """``Transport.open_stream`` answering with ``raw`` cut into ``size``-byte reads."""

    name = "up"

    def __init__(self, raw: bytes, size: int) -> None:
        self.reads = [raw[i : i + size] for i in range(0, len(raw), size)]

    @asynccontextmanager
    async def open_stream(self, path: str, payload: bytes) -> AsyncIterator[AsyncIterator[bytes]]:
        yield self._reads()

    async def _reads(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            yield read


class EventByEvent:
    """An ``OpenAIStream`` without its read-at-once path: the relay feeds it one event at a time."""

    def __init__(self, state: OpenAIStream) -> None:
        self._state = state

    @property
    def finished(self) -> bool:
        return self._state.finished

    @property
    def complete(self) -> bool:
        return self._state.complete

    def feed(self, data: bytes) -> list[StreamChunk]:
        return self._state.feed(data)


def event(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", **extra}
    if delta is not None:
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps(body) + b"\n\n"


def two_choices(
    first: dict[str, Any] | None,
    second: dict[str, Any] | None,
    finish: tuple[str | None, str | None] = (None, None),
    order: tuple[int, int] = (0, 1),
) -> bytes:
    """An event of an answer with ``n=2``: choice 0's and choice 1's deltas (None: that choice is not in it)."""
    choices = [
        {"index": index, "delta": delta, "finish_reason": reason}
        for index, delta, reason in zip((0, 1), (first, second), finish, strict=True)
        if delta is not None
    ]
    ordered = sorted(choices, key=lambda choice: order.index(choice["index"]))
    return b"data: " + orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": ordered}) + b"\n\n"


USAGE = event(None, choices=[], usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})
DONE = b"data: [DONE]\n\n"
ANSWER = event({"role": "assistant", "content": ""}) + b"".join(
    event({"content": word}) for word in ("Hello", " there", ", friend", ".")
)
STREAMS = {
    "plain": ANSWER + event({}, "stop") + USAGE + DONE,
    "no done": ANSWER + event({}, "stop") + USAGE,
    "cut short": ANSWER,
    "after done": ANSWER + event({}, "stop") + DONE + event({"content": "late"}),
    "tool call": event({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{}"}}]})
    + event({}, "tool_calls")
    + DONE,
    "two choices": b"data: "
    + orjson.dumps({"choices": [{"index": 1, "delta": {"content": "b"}}, {"index": 0, "delta": {"content": "a"}}]})
    + b"\n\n"
    + event({}, "stop")
    + DONE,
    "error event": ANSWER + b'data: {"error": {"message": "overloaded"}}\n\n' + DONE,
    "not json": ANSWER + b"data: {nope\n\n" + DONE,
    "not an object": ANSWER + b"data: [1, 2]\n\n" + DONE,
    "malformed choice": ANSWER + b'data: {"choices": ["x"]}\n\n' + DONE,
    "comments and crlf": b": keep-alive\r\n\r\n" + ANSWER + event({}, "stop") + DONE,
    "secret in a frame": ANSWER + event({"content": f"the key is {KEY}!"}) + event({}, "stop") + DONE,
    "secret across events": ANSWER + event({"content": KEY[:7]}) + event({"content": KEY[7:]}) + DONE,
    "escaped secret": ANSWER
    + b'data: {"choices":[{"index":0,"delta":{"content":"\\u0073k-Echoed-Key-7f3a9c"}}]}\n\n'
    + DONE,
    "escaped, clean": ANSWER + b'data: {"choices":[{"index":0,"delta":{"content":"a\\u00e9b"}}]}\n\n' + DONE,
    "escapes in content": ANSWER + event({"content": 'a "quote",\ta line\nbreak, caf\u00e9 \U0001f600 \\ a/b'}) + DONE,
    "escaped slash": ANSWER + b'data: {"choices":[{"index":0,"delta":{"content":"a\\/b"}}]}\n\n' + DONE,
    "many line breaks, then an escaped secret": ANSWER
    + b"".join(event({"content": "line\n" * 3}) for _ in range(8))
    + event({"tool_calls": [{"index": 0, "function": {"arguments": KEY}}]}).replace(b"sk", b"\\u0073k")
    + DONE,
    "usage with the last choice": ANSWER
    + event(
        {}, "stop", usage={"prompt_tokens": 9, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 2}}
    )
    + DONE,
    "usage null on every event": ANSWER.replace(b'"object"', b'"usage":null,"object"') + event({}, "stop") + DONE,
    "usage before content": USAGE + ANSWER + event({}, "stop") + DONE,
    "two usages": ANSWER
    + event({}, "stop")
    + USAGE
    + USAGE.replace(b'"completion_tokens":3', b'"completion_tokens":5')
    + DONE,
    "finish in a non-final event": two_choices({"content": "a"}, {"content": "x"})
    + two_choices({}, {"content": "y"}, finish=("length", None))
    + two_choices(None, {"content": "z"}, finish=(None, "stop"))
    + USAGE
    + DONE,
    "choice 1 first, over events": two_choices({"content": "one"}, {"content": "uno"}, order=(1, 0))
    + two_choices({"content": " two"}, {"content": " dos"}, order=(1, 0))
    + event({}, "stop")
    + DONE,
    "role only, then content": event({"role": "assistant"}) + ANSWER + event({}, "stop") + DONE,
    "null content with a tool call": event({"role": "assistant", "content": None})
    + event({"content": None, "tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]})
    + event({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]})
    + event({}, "tool_calls")
    + DONE,
    "refusal": event({"role": "assistant", "refusal": ""}) + event({"refusal": "I can't."}) + event({}, "stop") + DONE,
    "reasoning first": event({"reasoning_content": "thinking"}) + ANSWER + event({}, "stop") + DONE,
    "empty choices": event(None, choices=[]) + ANSWER + event({}, "stop") + DONE,
    "null delta": event(None, choices=[{"index": 0, "delta": None, "finish_reason": None}]) + ANSWER + DONE,
    "error before content": event({"role": "assistant", "content": ""}) + b'data: {"error": "busy"}\n\n' + DONE,
    "null error": ANSWER + b'data: {"error": null, "choices": []}\n\n' + DONE,
    "content not text": ANSWER + b'data: {"choices":[{"index":0,"delta":{"content":5}}]}\n\n' + DONE,
    "choices not a list": ANSWER + b'data: {"choices":{"index":0}}\n\n' + DONE,
    "not utf-8": ANSWER + b'data: {"choices":[{"index":0,"delta":{"content":"\xff"}}]}\n\n' + DONE,
    "a number out of range": ANSWER + b'data: {"created":1e400,"choices":[]}\n\n' + DONE,
    "a huge integer": ANSWER + b'data: {"created":123456789012345678901234567890,"choices":[]}\n\n' + DONE,
    "secret across three events": ANSWER
    + b"".join(event({"content": part}) for part in (KEY[:4], KEY[4:12], KEY[12:] + " ok"))
    + event({}, "stop")
    + DONE,
    "secret in choice 1": two_choices({"content": "fine"}, {"content": f"see {KEY}"}) + event({}, "stop") + DONE,
    "secret in another casing across events": ANSWER
    + event({"content": KEY.upper()[:9]})
    + event({"content": KEY[9:]})
    + DONE,
    "a beginning of a secret at the end": ANSWER + event({"content": "then " + KEY[:6]}) + event({}, "stop") + DONE,
    "named events and comments": b": hi\n\nevent: message\n" + ANSWER + b"id: 3\n" + event({}, "stop") + DONE,
    "multi-line data": b'data: {"choices":[{"index":0,\ndata: "delta":{"content":"hi"}}]}\n\n'
    + event({}, "stop")
    + DONE,
}


def fitting(text: bytes) -> bytes:
    """An event that is ``ANSWER``'s later events with ``text`` as the bytes of its content string, as they are."""
    head, tail = event({"content": "\0"}).split(b"\\u0000")
    return head + text + tail


TEMPLATE_STREAMS = {  # events shaped as the stream's ordinary ones (read with its template) whatever they hold
    "non-ascii text": ANSWER + fitting("caf\u00e9 \U0001f600".encode()) + event({}, "stop") + DONE,
    "not utf-8 in a fitting event": ANSWER + fitting(b"ab\xff") + DONE,
    "half a character in a fitting event": ANSWER + fitting(b"caf\xc3") + fitting(b"\xa9") + DONE,
    "a control byte in a fitting event": ANSWER + fitting(b"a\x01b") + DONE,
    "a tab as it is in a fitting event": ANSWER + fitting(b"a\tb") + DONE,
    "an escaped quote in a fitting event": ANSWER + fitting(b'say \\"hi\\"') + event({}, "stop") + DONE,
    "an escaped secret in a fitting event": ANSWER + fitting(b"\\u0073" + KEY[1:].encode()) + DONE,
    "a secret across fitting events": ANSWER + fitting(KEY[:6].encode()) + fitting(KEY[6:].encode()) + DONE,
    "a second content key in a fitting event": ANSWER + fitting(b'a","content":"b') + event({}, "stop") + DONE,
    "a finish reason smuggled into a fitting event": ANSWER
    + fitting(b'a"},"finish_reason":"stop"},{"index":0,"delta":{"content":"b')
    + DONE,
    "a usage smuggled into a fitting event": ANSWER
    + fitting(b'a"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":2},"x":[{"y":{"z":"')
    + DONE,
    "a fitting event cut short": ANSWER + fitting(b"a")[:-3] + b"\n\n" + DONE,
    "no text in a fitting event": ANSWER + fitting(b"") + event({}, "stop") + DONE,
    "the text is the probe's": event({"content": "x"}) + b"".join(fitting(t) for t in (b"a", b"b", b"a")) + DONE,
    "the text also after the content": b"".join(
        b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}],"model":"%s"}\n\n' % texts
        for texts in ((b"Hi", b"Hi"), (b"Hi", b"Hi"), (b"Hi", b"yo"), (b"there", b"Hi"), (b"you", b"Hi"))
    )
    + DONE,
    "the text escaped, and as it is in another field": b"".join(
        b'data: {"model":"%s","choices":[{"index":0,"delta":{"content":"\\u0048i"}}]}\n\n' % model
        for model in (b"Hi", b"Hi", b"yo", b"Hi")
    )
    + DONE,
    "two content keys on every event": b"".join(
        b'data: {"choices":[{"index":0,"delta":{"content":"%s","content":"!"}}]}\n\n' % text
        for text in (b"a", b"b", b"c", b"d")
    )
    + DONE,
    "a new id midway": ANSWER + ANSWER.replace(b'"c1"', b'"c2"') + event({}, "stop") + DONE,
    "a secret in every event's model": ANSWER.replace(b'"object"', b'"model":"%s","object"' % KEY.encode())
    + event({}, "stop")
    + DONE,
    "a secret's beginning and end around a text": ANSWER + fitting(b"ok") + fitting(b"then") + DONE,
}
STREAMS.update(TEMPLATE_STREAMS)


async def outcome(state: Any, raw: bytes, size: int, secrets: SecretSet = SECRETS) -> list[Any]:
    """What the relay hands on: each chunk's fields, then the error it raised (type and message), if any."""
    out: list[Any] = []
    chunks = relay(Recorded(raw, size), "/chat/completions", b"{}", SseData, state, secrets)  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            out.append((chunk.frame, chunk.text, chunk.has_content, chunk.usage, chunk.finish_reason))
    except Exception as exc:
        out.append((type(exc).__name__, str(exc)))
    return out


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("include_usage", [False, True])
async def test_reads_at_once_give_what_events_one_at_a_time_give(name: str, include_usage: bool) -> None:
    raw = STREAMS[name]
    for size in (len(raw), 1, 7, 50, 97, 160, 300):
        fast = OpenAIStream(include_usage, "up")
        expected = await outcome(EventByEvent(OpenAIStream(include_usage, "up")), raw, size)
        assert await outcome(fast, raw, size) == expected, (name, size)


# Secrets with a quote or a line break could be in a frame across a text and what encloses it.
ACROSS_QUOTES = SecretSet([KEY, 'ok"},"finish_reason', '"},"finish_reason":null}]}\n\ndata: {"id":"c1"'])


@pytest.mark.parametrize("name", list(TEMPLATE_STREAMS))
async def test_secrets_that_span_quotes_or_events_are_found_as_one_at_a_time_finds_them(name: str) -> None:
    raw = STREAMS[name]
    for size in (len(raw), 1, 50, 160):
        expected = await outcome(EventByEvent(OpenAIStream(False, "up")), raw, size, ACROSS_QUOTES)
        assert await outcome(OpenAIStream(False, "up"), raw, size, ACROSS_QUOTES) == expected, (name, size)


@pytest.mark.parametrize("name", list(TEMPLATE_STREAMS))
async def test_streams_without_secrets_to_scrub_read_at_once_as_one_at_a_time(name: str) -> None:
    raw, nothing = STREAMS[name], SecretSet()  # (a local server's deployment may have no key at all)
    for size in (len(raw), 1, 50, 160):
        expected = await outcome(EventByEvent(OpenAIStream(False, "up")), raw, size, nothing)
        assert await outcome(OpenAIStream(False, "up"), raw, size, nothing) == expected, (name, size)


async def test_a_whole_clean_stream_is_one_chunk_with_the_frames_as_they_came() -> None:
    raw = STREAMS["plain"]
    (chunk,) = await outcome(OpenAIStream(False, "up"), raw, len(raw))
    assert chunk[0] == ANSWER + event({}, "stop")  # the usage event the client did not ask for is left out
    assert chunk[1:] == ("Hello there, friend.", True, chunk[3], "stop") and chunk[3].completion_tokens == 3


async def test_a_secret_split_across_reads_is_masked() -> None:
    raw = STREAMS["secret across events"]
    for size in (len(raw), 60, 200):
        got = await outcome(OpenAIStream(False, "up"), raw, size)
        frames = b"".join(item[0] for item in got)
        assert KEY.encode() not in frames and b"****" in frames
        assert "".join(item[1] for item in got).endswith("****")


def whole(got: list[Any]) -> tuple[bytes, str, bool, Usage | None, str | None]:
    """What a clean stream's chunks say together: as the client, memory and the stats see it."""
    assert all(len(item) == 5 for item in got), got  # no error
    usages = [item[3] for item in got if item[3] is not None]
    finishes = [item[4] for item in got if item[4] is not None]
    return (
        b"".join(item[0] for item in got),
        "".join(item[1] for item in got),
        any(item[2] for item in got),
        usages[-1] if usages else None,
        finishes[-1] if finishes else None,
    )


def events_of(raw: bytes) -> bytes:
    """``raw``'s events as the client gets them: all but ``[DONE]`` and the usage-only ones it did not ask for."""
    splitter = SseData()
    datas = splitter.feed(raw) + splitter.end()
    parsed = [(data, orjson.loads(data)) for data in datas if data != b"[DONE]"]
    usage_only = [data for data, obj in parsed if obj.get("usage") and not obj.get("choices")]
    return b"".join(b"data: " + data + b"\n\n" for data in datas if data != b"[DONE]" and data not in usage_only)


READ = {  # stream: (text, content, usage, finish reason)
    "usage with the last choice": ("Hello there, friend.", True, Usage(9, 4, 2), "stop"),
    "usage null on every event": ("Hello there, friend.", True, None, "stop"),
    "two usages": ("Hello there, friend.", True, Usage(9, 5), "stop"),
    "finish in a non-final event": ("a", True, Usage(9, 3), "stop"),
    "choice 1 first, over events": ("one two", True, None, "stop"),
    "null content with a tool call": ("", True, None, "tool_calls"),
    "refusal": ("", True, None, "stop"),
    "reasoning first": ("Hello there, friend.", True, None, "stop"),
    "escapes in content": (
        'Hello there, friend.a "quote",\ta line\nbreak, caf\u00e9 \U0001f600 \\ a/b',
        True,
        None,
        None,
    ),
    "escaped slash": ("Hello there, friend.a/b", True, None, None),
    "role only, then content": ("Hello there, friend.", True, None, "stop"),
}


@pytest.mark.parametrize("name", list(READ))
async def test_what_the_gateway_reads_from_a_stream(name: str) -> None:
    raw = STREAMS[name]
    for size in (len(raw), 1, 50, 160):
        frames, *read = whole(await outcome(OpenAIStream(False, "up"), raw, size))
        assert frames == events_of(raw), (name, size)  # the upstream's bytes, untouched
        assert tuple(read) == READ[name], (name, size)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("error event", "UpstreamError"),
        ("error before content", "UpstreamError"),
        ("null error", "UpstreamError"),
        ("not json", "UpstreamProtocolError"),
        ("not utf-8", "UpstreamProtocolError"),
        ("a number out of range", "UpstreamProtocolError"),
        ("not an object", "UpstreamProtocolError"),
        ("not utf-8 in a fitting event", "UpstreamProtocolError"),
        ("half a character in a fitting event", "UpstreamProtocolError"),
        ("a control byte in a fitting event", "UpstreamProtocolError"),
        ("a tab as it is in a fitting event", "UpstreamProtocolError"),
        ("a fitting event cut short", "UpstreamProtocolError"),
    ],
)
async def test_a_bad_event_ends_the_stream_with_an_error_after_what_came_before(name: str, error: str) -> None:
    raw = STREAMS[name]
    bad = raw.index(b"data: ", len(ANSWER) if raw.startswith(ANSWER) else 1)  # the first event after the answer's
    for size in (len(raw), 1, 50, 160):
        got = await outcome(OpenAIStream(False, "up"), raw, size)
        *chunks, (kind, _message) = got
        assert issubclass(getattr(errors, kind), getattr(errors, error)), (name, size, kind)
        assert b"".join(chunk[0] for chunk in chunks) == raw[:bad], (name, size)


PIECES = [  # events a random stream is made of: ordinary ones mostly, some of every odd kind
    *[event({"content": word}) for word in ("Hi", " there", "", " caf\u00e9", ' "q"\n', f" {KEY[:5]}", KEY[5:])],
    event({"role": "assistant", "content": ""}),
    event({}, "stop"),
    event({"content": "x"}, "length"),
    event({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
    two_choices({"content": "a"}, {"content": "b"}, order=(1, 0)),
    USAGE,
    event({"content": "u"}, usage={"prompt_tokens": 1, "completion_tokens": 1}),
    event(None, choices=[]),
    b": ping\n\n",
    b'data: {"choices":[{"index":0,"delta":{"content":"\\u0041\\/"}}]}\n\n',
    b'data: {"error": {"message": "overloaded"}}\n\n',
    b"data: {nope\n\n",
    DONE,
]


@pytest.mark.parametrize("seed", range(40))
async def test_random_streams_at_random_cuts_read_at_once_as_one_at_a_time(seed: int) -> None:
    rng = random.Random(seed)
    weights = [12 if i < 7 else 1 for i in range(len(PIECES))]
    raw = b"".join(rng.choices(PIECES, weights, k=rng.randint(1, 40)))
    for size in (len(raw), rng.randint(1, 40), rng.randint(40, 400)):
        include_usage = rng.random() < 0.5
        expected = await outcome(EventByEvent(OpenAIStream(include_usage, "up")), raw, size)
        assert await outcome(OpenAIStream(include_usage, "up"), raw, size) == expected, (seed, size)


def datas_of(raw: bytes) -> list[bytes]:
    splitter = SseData()
    return splitter.feed(raw) + splitter.end()


def test_a_stream_reads_its_ordinary_events_without_parsing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = record_calls(monkeypatch, orjson, "loads")
    template = ContentTemplate()
    words = [f" word{k}" for k in range(20)]
    raw = ANSWER + b"".join(event({"content": word}) for word in words) + event({}, "stop")
    read, done = read_events(datas_of(raw), False, template)
    assert read is not None and not done
    chunk, outside_text = read
    assert (chunk.frame, chunk.text, chunk.finish_reason) == (raw, "Hello there, friend." + "".join(words), "stop")
    head, tail = event({"content": "\0"})[len(b"data: ") : -2].split(b"\\u0000")
    assert (template.head, template.tail) == (head, tail)
    # the role event, "Hello" (learnt from), the finish: 24 events, 3 parses
    assert parsed == [*datas_of(ANSWER)[:2], datas_of(event({}, "stop"))[0]]
    # the bytes to search for secrets besides the text: the events parsed (the one learnt from holds the template's
    # head and tail), and the template's head and tail when the read began (none yet)
    assert outside_text.split(b"\n\n") == [b"data: " + data for data in (b"", b"", *parsed)]
    read, _ = read_events(datas_of(event({"content": "more"}) + event({}, "stop")), False, template)
    assert read is not None
    assert read[1].split(b"\n\n") == [b"data: " + data for data in (head, tail, datas_of(event({}, "stop"))[0])]


@pytest.mark.parametrize(
    "ordinary",
    [
        event({"content": "a"}, "stop"),
        event({"content": "a"}, usage={"prompt_tokens": 1, "completion_tokens": 1}),
        event({"content": 'say "hi"'}),
        event({"content": "tab\there"}),
        event({"content": ""}),
        event({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        two_choices({"content": "a"}, {"content": "b"}),
        two_choices(None, {"content": "b"}),
        b'data: {"choices":[{"index":0,"delta":{"content":"a"}}],"model":"a"}\n\n',
    ],
)
def test_no_template_is_learnt_from_an_event_that_says_more_than_a_text(ordinary: bytes) -> None:
    template = ContentTemplate()
    read_events(datas_of(event({"content": "first"}) + ordinary * 3), False, template)
    assert (template.head, template.tail) == (b"", b"")
