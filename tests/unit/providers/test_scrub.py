"""Scrubbing configured secrets from answers: whole, streamed, split across chunks, escaped; cheap when clean."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ailb.contract import Completion, StreamChunk, Usage
from ailb.providers.canonical import ChunkWriter
from ailb.providers.openai.stream import chunk_from_event
from ailb.providers.scrub import StreamScrubber, scrub_completion
from ailb.redaction import SecretSet

KEY = "sk-Echoed-Key-7f3a9c"
SECRETS = SecretSet([KEY, "admin-token-xyz"])


def texts(writer: ChunkWriter, *pieces: str) -> list[StreamChunk]:
    return [writer.text(piece) for piece in pieces]


def content(chunks: list[StreamChunk]) -> str:
    out = ""
    for chunk in chunks:
        if chunk.frame:
            for choice in orjson.loads(chunk.frame[6:-2])["choices"]:
                out += choice["delta"].get("content") or ""
    return out


def scrub_all(chunks: list[StreamChunk]) -> list[StreamChunk]:
    scrubber = StreamScrubber(SECRETS)
    out: list[StreamChunk] = []
    for chunk in chunks:
        out += scrubber.feed([chunk])
    return out + scrubber.flush()


def test_clean_chunks_pass_as_they_are() -> None:
    chunks = texts(ChunkWriter("m", False), "Hello", " world", ". Keys look like sk-abc and Bearer tokens.")
    scrubber = StreamScrubber(SECRETS)
    assert [scrubber.feed([c]) for c in chunks] == [[c] for c in chunks]
    assert all(a is b for a, b in zip(scrubber.feed(chunks), chunks, strict=True))


def test_without_secrets_nothing_is_even_looked_at() -> None:
    chunks = texts(ChunkWriter("m", False), "s", KEY)
    assert StreamScrubber(SecretSet()).feed(chunks) is chunks


def test_a_secret_inside_one_chunk_is_masked_in_text_and_frame() -> None:
    [chunk] = scrub_all(texts(ChunkWriter("m", False), f"key={KEY.upper()}!"))
    assert chunk.text == "key=****!" and content([chunk]) == "key=****!"


def test_a_secret_split_across_chunks_is_masked_where_it_starts() -> None:
    writer = ChunkWriter("m", False)
    chunks = [writer.opening(), *texts(writer, "Key: sk-E", "CHOED-KEY", "-7f3a9c and more")]
    out = scrub_all(chunks)
    assert [c.text for c in out] == ["", "Key: ****", "", " and more"]
    assert content(out) == "Key: **** and more"


def test_a_secret_split_across_chunks_of_another_choice_is_masked_in_its_frames() -> None:
    writer = ChunkWriter("m", False, index=2)  # choice 2 of an answer with n > 1
    out = scrub_all(texts(writer, "Key: sk-E", "CHOED-KEY", "-7f3a9c and more"))
    assert content(out) == "Key: **** and more"
    assert KEY.lower() not in b"".join(c.frame for c in out).decode().lower()


def test_a_textless_chunk_inside_a_split_secret_keeps_the_hold() -> None:
    writer = ChunkWriter("m", False)
    chunks = [writer.text("x sk-Ech"), StreamChunk(frame=b""), writer.text("oed-Key-7f3a9c y")]
    scrubber = StreamScrubber(SECRETS)
    assert scrubber.feed(chunks[:1]) == [] and scrubber.feed(chunks[1:2]) == []
    out = scrubber.feed(chunks[2:])
    assert content(out) == "x **** y" and len(out) == 3


def test_a_prefix_that_never_completes_is_released_unchanged() -> None:
    writer = ChunkWriter("m", False)
    first, second = texts(writer, "it is", " fine")
    scrubber = StreamScrubber(SECRETS)
    assert scrubber.feed([first]) == []  # "s" may begin the key
    assert scrubber.feed([second]) == [first, second]
    last = writer.text("the end: sk-E")
    assert scrubber.feed([last]) == [] and scrubber.flush() == [last]


def test_one_reads_chunks_together_are_scrubbed_as_one_at_a_time() -> None:
    writer = ChunkWriter("m", False)
    unchanged = texts(writer, "it is sk-E", " fine", " in the end")  # a prefix the next text does not complete
    assert all(a is b for a, b in zip(StreamScrubber(SECRETS).feed(unchanged), unchanged, strict=True))
    split = texts(writer, "Key: sk-E", "CHOED-KEY", "-7f3a9c and more")
    assert content(StreamScrubber(SECRETS).feed(split)) == "Key: **** and more"
    ending = texts(writer, "fine", " then sk-", "Echo")
    scrubber = StreamScrubber(SECRETS)
    assert content(scrubber.feed(ending) + scrubber.flush()) == "fine then sk-Echo"
    assert StreamScrubber(SECRETS).feed(ending) != ending  # the joined text ends with a beginning: held


def test_the_end_of_the_text_releases_what_is_held() -> None:
    writer = ChunkWriter("m", False)
    held, finish = writer.text("yes"), writer.finish("stop")
    scrubber = StreamScrubber(SECRETS)
    assert scrubber.feed([held]) == []
    assert scrubber.feed([finish]) == [held, finish]


def test_tool_call_arguments_in_one_chunk_are_masked() -> None:
    writer = ChunkWriter("m", False)
    [chunk] = scrub_all([writer.tool_call_start(0, "call_1", "login", orjson.dumps({"token": KEY}).decode())])
    assert KEY.lower() not in chunk.frame.decode().lower()
    arguments = orjson.loads(chunk.frame[6:-2])["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
    assert orjson.loads(arguments) == {"token": "****"}


def passthrough(delta: dict[str, Any], escape: bool = False) -> StreamChunk:
    data = orjson.dumps({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})
    if escape:
        data = data.replace(b"sk-", b"\\u0073k\\u002d")
    return chunk_from_event(data, False, "dep")


def test_a_json_escaped_secret_in_a_passed_through_frame_is_masked() -> None:
    [chunk] = scrub_all([passthrough({"content": f"echo {KEY}"}, escape=True)])
    assert chunk.text == "echo ****" and content([chunk]) == "echo ****"
    assert b"\\u0073" not in chunk.frame


def test_an_escaped_frame_without_secrets_is_passed_as_it_is() -> None:
    chunk = passthrough({"content": "caf\u00e9 sk-other-thing"}, escape=True)
    assert scrub_all([chunk]) == [chunk]


@pytest.mark.parametrize("breaks", [0, 1, 12, 13, 14, 40])
def test_an_escaped_secret_behind_many_escaped_line_breaks_is_found(breaks: int) -> None:
    arguments = orjson.dumps({"k": KEY}).decode()  # in the frame: {\"k\":\"\u0073k\u002dEchoed...
    chunk = passthrough(
        {"content": "line\n" * breaks, "tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}, escape=True
    )
    assert not StreamScrubber(SECRETS).passes(chunk)
    [out] = scrub_all([chunk])
    assert b"echoed-key" not in out.frame.lower() and b"****" in out.frame
    assert StreamScrubber(SECRETS).passes(passthrough({"content": "line\n" * breaks + "sk-other"}))  # no \u, no \/


def completion(text: str, raw: bool = True) -> Completion:
    body = {"id": "c1", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": text}}]}
    return Completion(body=body, usage=Usage(1, 1), text=text, raw=orjson.dumps(body) if raw else None)


def test_a_clean_whole_answer_is_the_same_object() -> None:
    answer = completion("all fine, Bearer $TOKEN")
    assert scrub_completion(answer, SECRETS) is answer


def test_a_built_answer_gets_its_bytes_once() -> None:
    answer = scrub_completion(completion("fine", raw=False), SECRETS)
    assert answer.raw is not None and orjson.loads(answer.raw) == answer.body


def test_a_whole_answer_echoing_a_secret_is_masked_everywhere() -> None:
    answer = scrub_completion(completion(f"key {KEY.lower()} and ADMIN-TOKEN-XYZ"), SECRETS)
    assert answer.text == "key **** and ****"
    assert answer.body["choices"][0]["message"]["content"] == "key **** and ****"
    assert answer.raw is not None and orjson.loads(answer.raw) == answer.body


def test_an_escaped_whole_answer_is_masked() -> None:
    clean = completion(f"key {KEY}")
    escaped = Completion(clean.body, clean.usage, clean.text, (clean.raw or b"").replace(b"sk-", b"\\u0073k-"))
    answer = scrub_completion(escaped, SECRETS)
    assert answer.text == "key ****" and b"Echoed" not in (answer.raw or b"")
