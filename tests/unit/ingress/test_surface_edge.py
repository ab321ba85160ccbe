"""The shared route skeleton of the API surfaces: any failure is answered in the surface's own shape."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
from starlette.requests import Request

from ailb.bootstrap import Gateway
from ailb.errors import InvalidRequestError, RateLimitedError
from ailb.http.surface import Exchange, serve
from ailb.http.surfaces import MESSAGES, RESPONSES
from ailb.settings import load_settings


def request_to(gateway: Gateway) -> Request:
    scope: dict[str, Any] = {
        "type": "http", "method": "POST", "path": "/v1/messages", "headers": [], "query_string": b"",
        "app": SimpleNamespace(state=SimpleNamespace(runtimes=gateway)),
    }  # fmt: skip
    return Request(scope)


def gateway() -> Gateway:
    settings = load_settings({"OPENAI_API_KEY": "sk-unit-test-key-1", "ENABLE_MEMORY": "false", "ENABLE_GRPC": "false"})
    return Gateway(settings)


async def test_a_bug_is_a_500_in_the_surfaces_shape() -> None:
    async def broken(_exchange: Exchange) -> Any:
        raise RuntimeError("an internal detail /srv/secret/path")

    answer = await serve(request_to(gateway()), MESSAGES, broken)
    assert answer.status_code == 500
    assert orjson.loads(answer.body) == {
        "type": "error",
        "error": {"type": "api_error", "message": "The gateway hit an internal error. It has been logged."},
    }


async def test_errors_keep_their_status_and_headers() -> None:
    async def limited(_exchange: Exchange) -> Any:
        raise RateLimitedError("Slow down.", retry_after=2.5)

    for surface, body in (
        (MESSAGES, {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down."}}),
        (RESPONSES, {"error": {"message": "Slow down.", "type": "rate_limit_error", "param": None,
                               "code": "rate_limit_exceeded"}}),
    ):  # fmt: skip
        answer = await serve(request_to(gateway()), surface, limited)
        assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")
        assert orjson.loads(answer.body) == body


async def test_an_error_names_the_field_the_way_the_client_wrote_it() -> None:
    async def too_long(_exchange: Exchange) -> Any:
        raise InvalidRequestError("max_completion_tokens is too large: 99999.", param="max_completion_tokens")

    answer = await serve(request_to(gateway()), RESPONSES, too_long)
    body = orjson.loads(answer.body)["error"]
    assert (body["param"], body["message"]) == ("max_output_tokens", "max_output_tokens is too large: 99999.")
    anthropic = orjson.loads((await serve(request_to(gateway()), MESSAGES, too_long)).body)
    assert anthropic["error"]["message"] == "max_tokens is too large: 99999."
