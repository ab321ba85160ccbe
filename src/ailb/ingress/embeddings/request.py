"""An embeddings request as AILB's ``EmbeddingCall`` (pure).

``input`` is a string or a list of up to 2048 strings, none empty. Token ids (a list of integers, or a list of
such lists, as clients like LangChain send by default) are read back to text with cl100k_base, the tokenizer of
OpenAI's embedding models that such clients encode with, and embedded as that text; without the tokenizer they
are refused. ``dimensions`` goes to the upstream (OpenAI's ``text-embedding-3`` models and Ollama shorten
vectors; other servers may refuse it); the packaged model takes only its own 384. ``user`` is accepted and not
forwarded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ailb.contract import EmbeddingCall
from ailb.errors import InvalidRequestError
from ailb.ingress.embeddings.schema import EMBEDDING_FIELDS, EmbeddingRequest
from ailb.ingress.validation import AILB_FIELDS, convert, refuse_unknown, unsupported

Decoder = Callable[[list[int]], str]


def parse(
    data: dict[str, Any], tenant: str, headers: Mapping[str, str], decode: Decoder | None
) -> tuple[EmbeddingCall, bool]:
    """The call and whether the answer is base64 (``encoding_format``)."""
    for name in sorted(data.keys() & AILB_FIELDS - {"routing_strategy"}):
        raise unsupported(name, "memory and knowledge bases serve the chat, Responses and Messages APIs")
    refuse_unknown(data, EMBEDDING_FIELDS, "embeddings API")
    request = convert(data, EmbeddingRequest)
    call = EmbeddingCall(
        model=request.model,
        texts=_texts(request.input, decode),
        tenant=tenant,
        dimensions=request.dimensions,
        strategy=headers.get("x-ailb-strategy") or request.routing_strategy,
    )
    return call, request.encoding_format == "base64"


def _texts(given: str | list[Any], decode: Decoder | None) -> tuple[str, ...]:
    if isinstance(given, str):
        inputs: list[Any] = [given]
    elif all(_is_token(item) for item in given):
        inputs = [given]  # one input given as token ids
    else:
        inputs = given
    single = inputs is not given  # one string, or one list of token ids
    texts = []
    for index, item in enumerate(inputs):
        where = "input" if single else f"input[{index}]"
        text = item if isinstance(item, str) else _decoded(item, decode, where)
        if not text:
            raise InvalidRequestError("An input to embed must not be empty.", param=where, code="invalid_value")
        texts.append(text)
    return tuple(texts)


def _is_token(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


def _decoded(item: Any, decode: Decoder | None, where: str) -> str:
    if not isinstance(item, list) or not item or not all(_is_token(token) for token in item):
        raise InvalidRequestError(
            "Each input must be a string or a list of token ids.", param=where, code="invalid_value"
        )
    if decode is None:
        raise unsupported(where, "token ids cannot be read on this gateway (no tokenizer); send text")
    try:
        return decode(item)
    except (KeyError, ValueError, OverflowError, TypeError):
        raise InvalidRequestError(
            "These token ids are not cl100k_base tokens; send text.", param=where, code="invalid_value"
        ) from None
