"""What every ingress surface checks the same way: the schema, credentials in the body, AILB's own fields.

A request body is parsed once (orjson, at the HTTP edge) into a dict; each surface checks it against its msgspec
schema with ``convert`` (a 400 naming the field on the first violation) and reads AILB's own fields
(``session_id``, ``rag_collection``, ``rag_top_k``, ``routing_strategy``, and the ``X-Session-ID`` /
``X-AILB-Strategy`` headers) with ``ailb_options``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Protocol, TypeVar

import msgspec

from ailb.contract import SESSION_ID_PATTERN, ChatCall, SessionId
from ailb.errors import InvalidRequestError
from ailb.immutable import immutable

T = TypeVar("T")
Unset = msgspec.UNSET
_PATH = re.compile(r"at `\$(.*)`$")
# The session id's pattern, for the OpenAPI schema only: ``check_session`` is the one check (``SessionId``).
SessionIdField = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": SESSION_ID_PATTERN})]
AILB_BODY_FIELDS = ("session_id", "rag_collection", "rag_top_k", "routing_strategy")
# Credentials, endpoints and client-library settings (OpenAI, Azure, LiteLLM and cloud SDK options) are never part
# of the chat API. Sent in a body they would reach an upstream that may honour them (another gateway): refused.
CLIENT_CONFIG_FIELDS = frozenset({
    "api_key", "api_base", "base_url", "api_type", "api_version", "organization", "project", "headers",
    "extra_headers", "default_headers", "extra_query", "default_query", "extra_body", "timeout", "request_timeout",
    "max_retries", "http_client", "proxy", "proxies", "azure_endpoint", "azure_deployment", "azure_ad_token",
    "azure_ad_token_provider", "deployment_id", "engine", "custom_llm_provider", "api_token", "access_token",
    "authorization", "auth", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name",
    "aws_profile_name", "vertex_project", "vertex_location", "vertex_credentials",
})  # fmt: skip


class Schema(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """Base of the request and answer structs: unknown fields are the surface's own business (refused or
    passed on), never a schema error."""


class AilbFields(Schema, kw_only=True):
    """AILB's own request fields, accepted in the body of every surface with memory and RAG (never forwarded)."""

    session_id: SessionIdField | None = None
    rag_collection: str | Annotated[list[str], msgspec.Meta(min_length=1, max_length=8)] | None = None
    rag_top_k: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None
    routing_strategy: str | None = None


class AilbFieldValues(Protocol):
    """AILB's own fields as a checked body holds them (``AilbFields``, or the chat schema's own copies)."""

    @property
    def session_id(self) -> str | None: ...
    @property
    def rag_collection(self) -> str | list[str] | None: ...
    @property
    def rag_top_k(self) -> int | None: ...
    @property
    def routing_strategy(self) -> str | None: ...


@immutable
class AilbOptions:
    session_id: SessionId | None
    rag_collections: tuple[str, ...]
    rag_top_k: int
    strategy: str | None

    def call(
        self, body: Mapping[str, Any], model: str, stream: bool, tenant: str, include_usage: bool = False
    ) -> ChatCall:
        """The canonical call of ``body`` with these options."""
        return ChatCall(
            body=body,
            model=model,
            stream=stream,
            include_usage=include_usage,
            tenant=tenant,
            session_id=self.session_id,
            rag_collections=self.rag_collections,
            rag_top_k=self.rag_top_k,
            strategy=self.strategy,
        )


def convert(data: Any, schema: type[T], at: str = "") -> T:
    """``data`` checked against ``schema``; the first violation is a 400 naming its field (``at``: where ``data``
    sits in the body, e.g. ``input[2]``)."""
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        text = str(exc).replace("at `$", f"at `$.{at}", 1) if at else str(exc)
        param = param_of(text) or at or None
        raise InvalidRequestError(describe(text), param=param, code="invalid_value") from None
    except RecursionError:
        raise InvalidRequestError("The request body is nested too deeply.", code="invalid_json") from None


def ailb_options(fields: AilbFields, headers: Mapping[str, str]) -> AilbOptions:
    """AILB's fields from the body, with the ``X-Session-ID`` and ``X-AILB-Strategy`` headers as fallbacks."""
    return options_of(fields, headers.get("x-session-id"), headers.get("x-ailb-strategy"))


def options_of(fields: AilbFieldValues, header_session: str | None, header_strategy: str | None) -> AilbOptions:
    """AILB's fields of a checked body (any surface's), with the header values as fallbacks."""
    session_id = check_session(fields.session_id, header_session)
    collections = fields.rag_collection
    names = (collections,) if isinstance(collections, str) else tuple(collections or ())
    return AilbOptions(session_id, names, fields.rag_top_k or 3, header_strategy or fields.routing_strategy)


def check_session(body_session: str | None, header_session: str | None) -> SessionId | None:
    """The session id from the body, else the header, checked: the one check a request's session id gets."""
    if body_session is not None:
        return SessionId.check(body_session)
    if header_session is not None:
        return SessionId.check(header_session, source="X-Session-ID: ")
    return None


def refuse_unknown(data: Mapping[str, Any], known: Collection[str], surface: str) -> None:
    """400 for a field the surface does not know: a credential or client setting in the words every surface
    uses, anything else naming the field (a surface that translates cannot pass an unknown field on)."""
    unknown = sorted(data.keys() - set(known))
    refuse_client_config(unknown)
    if unknown:
        raise unsupported(unknown[0], f"AILB's {surface} does not support it")


def refuse_client_config(names: Collection[str]) -> None:
    """400 for a credential, endpoint or client-library setting among ``names`` (body fields)."""
    for key in sorted(names):
        if key.strip().lower().replace("-", "_") in CLIENT_CONFIG_FIELDS:
            raise InvalidRequestError(
                f"Unsupported parameter `{key}`: AILB never forwards credentials, endpoints or client settings "
                "from a request. Authenticate to AILB with 'Authorization: Bearer <key>'; upstream credentials "
                "and addresses are configured on the gateway.",
                param=key,
                code="unsupported_parameter",
            )


def unsupported(param: str, why: str) -> InvalidRequestError:
    """A field AILB cannot honour: refused (never dropped silently), naming it and saying why."""
    return InvalidRequestError(f"Unsupported parameter `{param}`: {why}.", param=param, code="unsupported_parameter")


def without_ailb_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in AILB_BODY_FIELDS}


def param_of(message: str) -> str | None:
    match = _PATH.search(message)
    if not match:
        return None
    path = match.group(1)
    return path[1:] if path.startswith(".") else path or None


def describe(message: str) -> str:
    text = message.replace("`$.", "`").replace("`$`", "the body")
    return f"Invalid request: {text}"


AILB_FIELDS = frozenset(AILB_BODY_FIELDS)
