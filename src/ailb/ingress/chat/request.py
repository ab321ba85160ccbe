"""The OpenAI chat completions request → the canonical call. The chat schema is the canonical form, so the checked
body is the call's body as it is, without AILB's own fields."""

from __future__ import annotations

from typing import Any

from ailb.contract import ChatCall
from ailb.ingress.chat.schema import REQUEST_FIELDS, ChatCompletionRequest
from ailb.ingress.validation import AILB_BODY_FIELDS, check_session, convert, refuse_client_config


def validate_chat(
    data: dict[str, Any], tenant: str, header_session: str | None, header_strategy: str | None
) -> ChatCall:
    """Check ``data`` against the OpenAI chat schema and split off AILB's own fields."""
    if not data.keys() <= REQUEST_FIELDS:
        refuse_client_config(data.keys() - REQUEST_FIELDS)
    request = convert(data, ChatCompletionRequest)
    session_id = check_session(request.session_id, header_session)
    for key in AILB_BODY_FIELDS:
        data.pop(key, None)
    collections = request.rag_collection
    names = (collections,) if isinstance(collections, str) else tuple(collections or ())
    options = request.stream_options
    return ChatCall(
        body=data,
        model=request.model,
        stream=bool(request.stream),
        include_usage=bool(options and options.include_usage),
        tenant=tenant,
        session_id=session_id,
        rag_collections=names,
        rag_top_k=request.rag_top_k or 3,
        strategy=header_strategy or request.routing_strategy,
    )
