"""The API surfaces' routes as the FastAPI app declares them: their OpenAPI description (the requests are answered
on the hot path, ``app.HotPath``)."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI

from ailb.http import surfaces
from ailb.ingress.completions.schema import CompletionRequest, TextCompletion
from ailb.ingress.embeddings.schema import EmbeddingList, EmbeddingRequest
from ailb.ingress.messages.schema import AnthropicError, CountTokensRequest, Message, MessagesRequest, TokenCount
from ailb.ingress.responses.schema import ResponseObject, ResponsesRequest

_REF = "#/components/schemas/{name}"
_STRUCTS = (
    ResponsesRequest, ResponseObject, MessagesRequest, Message, CountTokensRequest, TokenCount, AnthropicError,
    CompletionRequest, TextCompletion, EmbeddingRequest, EmbeddingList,
)  # fmt: skip
_SCHEMAS, COMPONENTS = msgspec.json.schema_components(_STRUCTS, ref_template=_REF)
SCHEMA = dict(zip((struct.__name__ for struct in _STRUCTS), _SCHEMAS, strict=True))
STREAM = {"text/event-stream": {"schema": {"type": "string"}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _anthropic_errors(errors: dict[str, Any]) -> dict[str, Any]:
    return {code: {**spec, **_json(SCHEMA["AnthropicError"])} for code, spec in errors.items()}


def add_surface_routes(app: FastAPI, errors: dict[str, Any]) -> None:
    """Declare the surfaces' routes; ``errors`` are the OpenAI-shaped error answers every route may give."""
    routes = (
        ("/v1/responses", surfaces.create_response, "ResponsesRequest", "ResponseObject", errors,
         "Create a model response (OpenAI Responses API; `stream: true` answers with its event stream)"),
        ("/v1/messages", surfaces.create_message, "MessagesRequest", "Message", _anthropic_errors(errors),
         "Create a message (Anthropic Messages API; `stream: true` answers with its event stream)"),
        ("/v1/messages/count_tokens", surfaces.count_message_tokens, "CountTokensRequest", "TokenCount",
         _anthropic_errors(errors), "Count a message's input tokens (Anthropic's count, else AILB's estimate)"),
        ("/v1/completions", surfaces.create_completion, "CompletionRequest", "TextCompletion", errors,
         "Create a text completion (legacy OpenAI API, answered through chat completions)"),
        ("/v1/embeddings", surfaces.create_embeddings, "EmbeddingRequest", "EmbeddingList", errors,
         "Create embeddings (deployments' embedding models or the packaged all-MiniLM-L6-v2)"),
    )  # fmt: skip
    for path, handler, request, answer, error_answers, summary in routes:
        content = _json(SCHEMA[answer])["content"]
        if path not in ("/v1/embeddings", "/v1/messages/count_tokens"):
            content = {**content, **STREAM}
        extra = {
            "requestBody": {"required": True, **_json(SCHEMA[request])},
            "responses": {"200": {"description": answer, "content": content}, **error_answers},
        }
        app.add_api_route(path, handler, methods=["POST"], summary=summary, openapi_extra=extra)
    for method in ("GET", "DELETE"):
        app.add_api_route(
            "/v1/responses/{response_id}",
            surfaces.stored_response,
            methods=[method],
            name=f"{method.lower()}_stored_response",
            summary="Always 404: AILB does not store responses",
            openapi_extra={"responses": {"404": errors["404"]}},
        )
