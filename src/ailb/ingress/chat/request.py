"""The OpenAI chat completions request → the canonical call. The chat schema is the canonical form, so the checked
body is the call's body as it is, without AILB's own fields."""

from __future__ import annotations

from typing import Any

from ailb.contract import ChatCall
from ailb.ingress.chat.schema import REQUEST_FIELDS, ChatCompletionRequest
from ailb.ingress.validation import AILB_BODY_FIELDS, convert, options_of, refuse_client_config


def validate_chat(
    data: dict[str, Any], tenant: str, header_session: str | None, header_strategy: str | None
) -> ChatCall:
    """Check ``data`` against the OpenAI chat schema and split off AILB's own fields."""
    if not data.keys() <= REQUEST_FIELDS:
        refuse_client_config(data.keys() - REQUEST_FIELDS)
    request = convert(data, ChatCompletionRequest)
    for key in AILB_BODY_FIELDS:
        data.pop(key, None)
    options = request.stream_options
    include_usage = bool(options and options.include_usage)
    return options_of(request, header_session, header_strategy).call(
        data, request.model, bool(request.stream), tenant, include_usage
    )
