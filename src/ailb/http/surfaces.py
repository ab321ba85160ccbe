"""The API surfaces beside chat completions: ``/v1/responses``, ``/v1/messages`` (and ``count_tokens``),
``/v1/completions`` and ``/v1/embeddings``. Thin: each translates with its ``ailb.ingress`` package, runs the
same ``ChatService`` (or ``EmbeddingService``) as chat, and answers in its own shape (``surface.serve``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ailb.contract import ChatCall, StreamChunk
from ailb.errors import AILBError, NotFoundError
from ailb.http.errors import error_body, error_response
from ailb.http.ports import runtime_of
from ailb.http.surface import JSON, Exchange, Surface, serve
from ailb.ingress.completions import request as completions_request
from ailb.ingress.completions import response as completions_response
from ailb.ingress.completions import stream as completions_stream
from ailb.ingress.embeddings import request as embeddings_request
from ailb.ingress.embeddings.response import embedding_list
from ailb.ingress.messages import count, errors
from ailb.ingress.messages.egress import messages_call
from ailb.ingress.messages.stream import client_events
from ailb.ingress.responses import request as responses_request
from ailb.ingress.responses.response import from_completion
from ailb.ingress.responses.stream import ResponseEvents
from ailb.redaction import Redactor
from ailb.routing.tokens import offline_decoder
from ailb.service import ChatResult

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ailb.governance.meter import Meter


def anthropic_error(exc: AILBError, redactor: Redactor) -> Response:
    return Response(errors.error_body(exc, redactor), status_code=exc.status, media_type=JSON, headers=exc.headers)


MAX_TOKENS = "max_completion_tokens"  # the canonical request's output cap
RESPONSES = Surface("responses", error_response, {MAX_TOKENS: "max_output_tokens"})
MESSAGES = Surface("messages", anthropic_error, {MAX_TOKENS: "max_tokens"})
COUNT_TOKENS = Surface("count_tokens", anthropic_error)
COMPLETIONS = Surface("completions", error_response, {MAX_TOKENS: "max_tokens"})
EMBEDDINGS = Surface("embeddings", error_response)


# --- /v1/responses ----------------------------------------------------------------------------------------------
async def create_response(request: Request) -> Response:
    return await serve(request, RESPONSES, _response)


async def _response(exchange: Exchange) -> Response:
    call, spec = responses_request.to_chat_call(await exchange.body(), exchange.key.tenant, exchange.headers)
    meter = await exchange.admit(call.model, "chat", call.body)
    service = exchange.gateway.service
    if call.stream:
        stream = await exchange.unless_disconnected(service.stream(call, meter))
        exchange.routed(stream.route, stream.call.messages)
        frames = ResponseEvents(spec).events(exchange.span.watch(stream.chunks), exchange.gateway.redactor)
        return exchange.events(frames, stream.route, stream.context)
    result = await exchange.unless_disconnected(service.complete(call, meter))
    exchange.routed(result.route, result.call.messages)
    exchange.span.completed(result.completion)
    return exchange.json(orjson.dumps(from_completion(result.completion, spec)), result.route, result.context)


async def stored_response(request: Request) -> Response:
    """``GET``/``DELETE /v1/responses/{id}``: nothing is stored, so there is nothing to find."""
    exc = NotFoundError(
        "AILB does not store responses: there is no response to retrieve or delete.", code="response_not_found"
    )
    return error_response(exc, runtime_of(request).redactor)


# --- /v1/messages -------------------------------------------------------------------------------------------------
async def create_message(request: Request) -> Response:
    return await serve(request, MESSAGES, _message)


async def _message(exchange: Exchange) -> Response:
    call = messages_call(await exchange.body(), exchange.key.tenant, exchange.headers)
    meter = await exchange.admit(call.model, "chat", call.body)
    service = exchange.gateway.service
    if call.stream:
        stream = await exchange.unless_disconnected(service.stream(call, meter))
        exchange.routed(stream.route, stream.call.messages)
        chunks = exchange.span.watch(stream.chunks)
        return exchange.events(
            client_events(chunks, exchange.gateway.redactor, errors.error_type), stream.route, stream.context
        )
    result = await exchange.unless_disconnected(service.complete(call, meter))
    exchange.routed(result.route, result.call.messages)
    exchange.span.completed(result.completion)
    completion = result.completion
    return exchange.json(completion.raw or orjson.dumps(completion.body), result.route, result.context)


async def count_message_tokens(request: Request) -> Response:
    return await serve(request, COUNT_TOKENS, _count_tokens)


async def _count_tokens(exchange: Exchange) -> Response:
    data = await exchange.body()
    parsed = count.parse(data)
    exchange.model = parsed.model
    exchange.gateway.governor.meter(exchange.key, parsed.model)  # the key's model scope; counting is free
    tokens, source = await exchange.unless_disconnected(count.count_tokens(exchange.gateway.router, data, parsed))
    body = orjson.dumps({"input_tokens": tokens})
    return Response(body, media_type=JSON, headers={"x-ailb-token-count": source})


# --- /v1/completions ----------------------------------------------------------------------------------------------
async def create_completion(request: Request) -> Response:
    return await serve(request, COMPLETIONS, _completion)


async def _completion(exchange: Exchange) -> Response:
    calls, spec = completions_request.parse(await exchange.body(), exchange.key.tenant, exchange.headers)
    exchange.gateway.router.resolve(spec.model)
    first = await exchange.admit(spec.model, "text_completion", calls[0].body)
    # Each prompt is one upstream request, metered on its own.
    meters = [first, *(exchange.gateway.governor.meter(exchange.key, spec.model) for _ in calls[1:])]
    service = exchange.gateway.service
    if calls[0].stream:
        stream = await exchange.unless_disconnected(service.stream(calls[0], meters[0]))
        exchange.routed(stream.route)

        async def open_next(number: int) -> AsyncIterator[StreamChunk]:
            return (await service.stream(calls[number], meters[number])).chunks

        redactor = exchange.gateway.redactor
        frames = completions_stream.events(spec, stream.chunks, open_next, lambda exc: _error_event(exc, redactor))
        return exchange.events(frames, stream.route)
    results = await exchange.unless_disconnected(_complete_all(exchange, calls, meters))
    exchange.routed(results[0].route)
    body = completions_response.text_completion([result.completion for result in results], spec)
    return exchange.json(orjson.dumps(body), results[0].route)


async def _complete_all(exchange: Exchange, calls: list[ChatCall], meters: list[Meter | None]) -> list[ChatResult]:
    service = exchange.gateway.service
    tasks = [asyncio.ensure_future(service.complete(call, meter)) for call, meter in zip(calls, meters, strict=True)]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _error_event(exc: AILBError, redactor: Redactor) -> bytes:
    return b"event: error\ndata: " + error_body(exc, redactor) + b"\n\n"


# --- /v1/embeddings -----------------------------------------------------------------------------------------------
async def create_embeddings(request: Request) -> Response:
    return await serve(request, EMBEDDINGS, _embeddings)


async def _embeddings(exchange: Exchange) -> Response:
    data = await exchange.body()
    call, as_base64 = embeddings_request.parse(data, exchange.key.tenant, exchange.headers, offline_decoder())
    embeddings = exchange.gateway.embeddings
    embeddings.resolve(call.model)
    meter = await exchange.admit(call.model, "embeddings", {})
    result, route = await exchange.unless_disconnected(embeddings.embed(call, meter))
    exchange.routed(route)
    return exchange.json(orjson.dumps(embedding_list(result, call.model, as_base64)), route)
