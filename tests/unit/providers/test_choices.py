"""``n > 1`` by one upstream call per choice: request bodies, merged answers, interleaved streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from ailb.contract import Completion, StreamChunk, Usage
from ailb.errors import InvalidRequestError, UpstreamError
from ailb.providers import canonical
from ailb.providers.canonical import ChunkWriter
from ailb.providers.choices import choice_bodies, complete_choices, stream_choices

from .streams import payloads

BODY = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "n": 3}


def test_each_choice_is_asked_without_n_and_with_its_own_seed() -> None:
    assert choice_bodies(BODY, 3) == [{"model": "m", "messages": BODY["messages"]}] * 3
    seeded = choice_bodies({**BODY, "seed": 7}, 3)
    assert [body["seed"] for body in seeded] == [7, 8, 9] and all("n" not in body for body in seeded)


async def test_whole_answers_are_merged_with_summed_usage() -> None:
    asked: list[Mapping[str, Any]] = []

    async def one(body: Mapping[str, Any]) -> Completion:
        asked.append(body)
        text = f"answer {len(asked)}"
        usage = Usage(10, len(asked), cache_read_tokens=4)
        payload = canonical.completion_body(model="m", content=text, tool_calls=[], finish_reason="stop", usage=usage)
        return Completion(payload, usage, text)

    done = await complete_choices(BODY, one)
    assert len(asked) == 3
    assert [c["index"] for c in done.body["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in done.body["choices"]] == ["answer 1", "answer 2", "answer 3"]
    assert done.usage == Usage(30, 6, cache_read_tokens=12)
    assert done.body["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": 6,
        "total_tokens": 36,
        "prompt_tokens_details": {"cached_tokens": 12},
    }
    assert done.text == "answer 1"


async def test_one_failed_call_fails_the_answer_and_cancels_the_others() -> None:
    cancelled = 0

    async def one(body: Mapping[str, Any]) -> Completion:
        nonlocal cancelled
        if body.get("seed") == 1:
            raise UpstreamError("boom", deployment="d")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        raise AssertionError("not cancelled")

    with pytest.raises(UpstreamError, match="boom"):
        await complete_choices({**BODY, "seed": 0}, one)
    assert cancelled == 2


def opener(words: dict[int, list[str]], fail_at: tuple[int, int] | None = None, closed: list[int] | None = None) -> Any:
    """``open_one`` for streams answering ``words[index]``, one word per chunk; ``fail_at=(index, word)``."""

    def open_one(body: Mapping[str, Any], writer: ChunkWriter) -> AsyncIterator[StreamChunk]:
        async def chunks() -> AsyncIterator[StreamChunk]:
            try:
                for position, word in enumerate(words[writer.index]):
                    await asyncio.sleep(0.001 * (writer.index + 1))
                    if fail_at == (writer.index, position):
                        raise UpstreamError("sub-stream failed", deployment="d")
                    yield writer.text(word)
                yield writer.finish("stop")
                yield writer.usage(Usage(5, len(words[writer.index])))
            finally:
                if closed is not None:
                    closed.append(writer.index)

        return chunks()

    return open_one


async def test_streams_are_interleaved_with_their_index_and_one_summed_usage_chunk() -> None:
    words = {0: ["a", "b", "c"], 1: ["d", "e"], 2: ["f"]}
    chunks = [c async for c in stream_choices(BODY, "m", True, opener(words))]
    objs = payloads(chunks)
    assert len({(o["id"], o["created"]) for o in objs}) == 1
    by_index: dict[int, str] = {}
    for obj in objs:
        for choice in obj["choices"]:
            by_index[choice["index"]] = by_index.get(choice["index"], "") + (choice["delta"].get("content") or "")
    assert by_index == {0: "abc", 1: "de", 2: "f"}
    finishes = [c["index"] for o in objs for c in o["choices"] if c["finish_reason"] == "stop"]
    assert sorted(finishes) == [0, 1, 2]
    usage = [o for o in objs if o.get("usage")]
    assert (
        usage == [objs[-1]] and objs[-1]["usage"]["prompt_tokens"] == 15 and objs[-1]["usage"]["completion_tokens"] == 6
    )
    assert "".join(c.text for c in chunks) == "abc"  # the answer's text (memory) is choice 0's
    assert [c.usage for c in chunks if c.usage is not None] == [Usage(15, 6)]


async def test_usage_chunk_is_silent_unless_asked_for() -> None:
    chunks = [c async for c in stream_choices({**BODY, "n": 2}, "m", False, opener({0: ["a"], 1: ["b"]}))]
    assert chunks[-1].frame == b"" and chunks[-1].usage == Usage(10, 2)
    assert all(not obj.get("usage") for obj in payloads(chunks))


async def test_a_failing_sub_stream_fails_the_stream_and_closes_the_others() -> None:
    closed: list[int] = []
    stream = stream_choices(
        BODY, "m", False, opener({0: ["a", "b", "c"], 1: ["d", "e"], 2: ["f", "g"]}, (1, 1), closed)
    )
    seen: list[StreamChunk] = []
    with pytest.raises(UpstreamError, match="sub-stream failed"):
        async for chunk in stream:
            seen.append(chunk)
    assert any(c.has_content for c in seen)
    assert sorted(closed) == [0, 1, 2]


async def test_closing_the_stream_closes_every_call() -> None:
    closed: list[int] = []
    stream = stream_choices(BODY, "m", False, opener({i: ["x"] * 50 for i in range(3)}, closed=closed))
    assert (await anext(stream)).has_content
    await stream.aclose()  # type: ignore[attr-defined]
    assert sorted(closed) == [0, 1, 2]


def test_a_request_that_cannot_be_translated_fails_before_any_call() -> None:
    def refuse(body: Mapping[str, Any], writer: ChunkWriter) -> AsyncIterator[StreamChunk]:
        raise InvalidRequestError("no", param="tools")

    with pytest.raises(InvalidRequestError):
        stream_choices(BODY, "m", False, refuse)
