"""``n > 1`` for providers that answer one choice per call (Anthropic, Ollama): one upstream call per choice.

Provider-independent: an adapter hands over how to answer one choice, this module makes the ``n`` calls
concurrently and merges them, so the router still sees one attempt at one deployment.

- Whole answers: the choices (index 0..n-1) in one ``chat.completion``; usage is the sum of the calls (each
  call read the prompt); the text kept for memory is choice 0's, as for upstreams that answer ``n`` natively.
- Streams: the calls' chunks are interleaved as they come, each written with its choice's ``index`` under one
  id; the calls' usage is summed into one usage chunk at the end. Any call failing fails the stream: before the
  first content the router fails over, after it the client gets the error event. Closing the stream closes
  every call.
- A ``seed`` becomes ``seed + index`` per choice: still reproducible, and the choices differ.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from ailb.contract import Completion, StreamChunk, Usage
from ailb.providers.canonical import ChunkWriter, completion_id
from ailb.providers.tooling import legacy_functions

OpenOne = Callable[[Mapping[str, Any], ChunkWriter], AsyncIterator[StreamChunk]]
CompleteOne = Callable[[Mapping[str, Any]], Awaitable[Completion]]


def choice_count(body: Mapping[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 1 else 1


def choice_bodies(body: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """The request for each choice: ``n`` removed, ``seed`` varied per choice."""
    single = {key: value for key, value in body.items() if key != "n"}
    seed = body.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        return [single] * n
    return [{**single, "seed": seed + index} for index in range(n)]


async def complete_choices(body: Mapping[str, Any], complete_one: CompleteOne) -> Completion:
    n = choice_count(body)
    if n == 1:
        return await complete_one(body)
    calls = [asyncio.ensure_future(complete_one(one)) for one in choice_bodies(body, n)]
    try:
        completions = await asyncio.gather(*calls)
    except BaseException:  # the first failure (or a cancellation) ends every call, and is what the router sees
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        raise
    return merge_completions(list(completions))


def merge_completions(completions: list[Completion]) -> Completion:
    usage = Usage()
    choices: list[dict[str, Any]] = []
    for index, completion in enumerate(completions):
        usage = usage + completion.usage
        choices.extend({**choice, "index": index} for choice in completion.body["choices"][:1])
    body = {**completions[0].body, "id": completion_id(), "choices": choices, "usage": usage.as_dict()}
    return Completion(body=body, usage=usage, text=completions[0].text)


def stream_choices(
    body: Mapping[str, Any], model: str, include_usage: bool, open_one: OpenOne
) -> AsyncIterator[StreamChunk]:
    """The answer's chunks; every call is opened (and so translated) before this returns."""
    n = choice_count(body)
    legacy = legacy_functions(body)
    if n == 1:
        return open_one(body, ChunkWriter(model, include_usage, legacy_functions=legacy))
    identity = (completion_id(), int(time.time()))
    streams = [
        open_one(one, ChunkWriter(model, False, index=index, identity=identity, legacy_functions=legacy))
        for index, one in enumerate(choice_bodies(body, n))
    ]
    return _interleaved(streams, ChunkWriter(model, include_usage, identity=identity))


async def _next(stream: AsyncIterator[StreamChunk]) -> StreamChunk:
    return await anext(stream)


async def _interleaved(streams: list[AsyncIterator[StreamChunk]], writer: ChunkWriter) -> AsyncIterator[StreamChunk]:
    """Chunks of every stream as they come (choice 0's text is the answer's text); then the summed usage."""
    usage = Usage()
    waiting = {asyncio.ensure_future(_next(stream)): index for index, stream in enumerate(streams)}
    try:
        while waiting:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=waiting.__getitem__):
                index = waiting.pop(task)
                try:
                    chunk = task.result()
                except StopAsyncIteration:
                    continue
                waiting[asyncio.ensure_future(_next(streams[index]))] = index
                if chunk.usage is not None:
                    usage = usage + chunk.usage
                if not chunk.frame:
                    continue
                yield replace(chunk, text="") if index and chunk.text else chunk
        yield writer.usage(usage)
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for stream in streams:
            await _close(stream)


async def _close(stream: AsyncIterator[StreamChunk]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # an abandoned call's close failing changes nothing for the answer
            pass
