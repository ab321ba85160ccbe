"""Scripts sent together: every script call made during one turn of the event loop goes to Redis in one
pipeline (one round trip, one connection), so under load the cost of a Redis-backed limit per request falls to
a fraction of one call's (``bench/RESULTS.md``, the fleet section). A turn with one call sends it alone: no
pipeline overhead when requests come one at a time, and no call waits longer than the current loop turn.

Each script is still atomic on its own (the pipeline is not a transaction, and needs not be). A batch is sent
from a task of its own, so a caller that is cancelled never cuts a batch short; its result is simply not read.
A connection failure fails the whole batch (``SharedStateUnavailable``), like a failed single call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from ailb.state.base import SharedStateUnavailable

log = logging.getLogger("ailb.state")


@dataclass(slots=True)
class _Call:
    name: str
    keys: Sequence[str]
    args: Sequence[Any]
    result: asyncio.Future[Any]


Send = Callable[[str, Callable[[Any], Any]], Any]  # RedisLink.call: (operation, work(client)) -> awaitable


class ScriptBatcher:
    def __init__(self, send: Send, shas: dict[str, str], sources: dict[str, str]) -> None:
        self._send = send
        self._shas = shas
        self._sources = sources
        self._pending: list[_Call] = []
        self._operation = ""
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, operation: str, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        call = _Call(name, keys, args, loop.create_future())
        if not self._pending:
            self._operation = operation
            loop.call_soon(self._flush)
        self._pending.append(call)
        return await call.result

    async def aclose(self) -> None:
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._deliver(self._operation, batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, operation: str, batch: list[_Call]) -> None:
        results: list[Any]
        try:
            if len(batch) == 1:
                results = [await self._send(operation, lambda client: self._one(client, batch[0]))]
            else:
                results = await self._send(operation, lambda client: self._many(client, batch))
        except SharedStateUnavailable as exc:
            results = [SharedStateUnavailable(str(exc)) for _ in batch]
        except Exception:
            log.exception("shared state: sending scripts to Redis failed")
            results = [SharedStateUnavailable("sending to Redis failed") for _ in batch]
        except BaseException:  # cancelled at shutdown: nobody may wait forever
            _settle_all(batch, [SharedStateUnavailable("closing") for _ in batch])
            raise
        _settle_all(batch, results)

    async def _one(self, client: Any, call: _Call) -> Any:
        sha = self._shas[call.name]
        try:
            return await client.evalsha(sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            await client.script_load(self._sources[call.name])
            return await client.evalsha(sha, len(call.keys), *call.keys, *call.args)

    async def _many(self, client: Any, batch: list[_Call]) -> list[Any]:
        async with client.pipeline(transaction=False) as pipe:
            for call in batch:
                pipe.evalsha(self._shas[call.name], len(call.keys), *call.keys, *call.args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        for index, result in enumerate(results):
            if isinstance(result, NoScriptError):  # the server lost the scripts: load them and send these again
                results[index] = await self._one(client, batch[index])
            elif isinstance(result, Exception):
                raise result
        return results


def _settle_all(batch: list[_Call], results: list[Any]) -> None:
    for call, result in zip(batch, results, strict=True):
        if call.result.done():
            continue
        if isinstance(result, BaseException):
            call.result.set_exception(result)
        else:
            call.result.set_result(result)
