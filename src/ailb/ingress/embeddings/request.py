"""An embeddings request as AILB's ``EmbeddingCall`` (pure).

``input`` is a string or a list of up to 2048 strings, none empty; token-id inputs are refused (send text).
``dimensions`` goes to the upstream (OpenAI's ``text-embedding-3`` models and Ollama shorten vectors; other
servers may refuse it); the packaged model takes only its own 384. ``user`` is accepted and not forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ailb.contract import EmbeddingCall
from ailb.errors import InvalidRequestError
from ailb.ingress.embeddings.schema import EMBEDDING_FIELDS, EmbeddingRequest
from ailb.ingress.validation import AILB_FIELDS, convert, refuse_unknown, unsupported


def parse(data: dict[str, Any], tenant: str, headers: Mapping[str, str]) -> tuple[EmbeddingCall, bool]:
    """The call and whether the answer is base64 (``encoding_format``)."""
    for name in sorted(data.keys() & AILB_FIELDS - {"routing_strategy"}):
        raise unsupported(name, "memory and knowledge bases serve the chat, Responses and Messages APIs")
    refuse_unknown(data, EMBEDDING_FIELDS, "embeddings API")
    request = convert(data, EmbeddingRequest)
    texts = _texts(request.input)
    call = EmbeddingCall(
        model=request.model,
        texts=texts,
        tenant=tenant,
        dimensions=request.dimensions,
        strategy=headers.get("x-ailb-strategy") or request.routing_strategy,
    )
    return call, request.encoding_format == "base64"


def _texts(given: str | list[Any]) -> tuple[str, ...]:
    texts = (given,) if isinstance(given, str) else tuple(given)
    for index, text in enumerate(texts):
        where = "input" if isinstance(given, str) else f"input[{index}]"
        if not isinstance(text, str):
            raise InvalidRequestError(
                "Inputs given as token ids are not supported: send text (a string or a list of strings).",
                param=where,
                code="unsupported_parameter",
            )
        if not text:
            raise InvalidRequestError("An input to embed must not be empty.", param=where, code="invalid_value")
    return texts
