"""Conversation memory of the calling tenant: list a session's turns, erase a session.

A session id names a session only within the caller's tenant (its client key): another tenant's session of
the same name is never visible here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ailb.contract import SESSION_ID_PATTERN
from ailb.errors import InvalidRequestError, NotFoundError
from ailb.http.auth import tenant_of
from ailb.http.ports import runtime_of
from ailb.ingress.openai_schema import ErrorResponse

if TYPE_CHECKING:
    from ailb.memory.service import MemoryService

router = APIRouter(prefix="/v1/memory", tags=["memory"])

SessionId = Annotated[
    str,
    msgspec.Meta(
        pattern=SESSION_ID_PATTERN,
        description="The session id sent as `session_id` or `X-Session-ID` with chat requests",
        examples=["user-42:support"],
    ),
]


class MemoryTurn(msgspec.Struct):
    id: str
    user: Annotated[str, msgspec.Meta(description="The user's message")]
    assistant: Annotated[str, msgspec.Meta(description="The assistant's whole reply")]
    model: str
    deployment: str
    prompt_tokens: int
    completion_tokens: int
    timestamp: Annotated[float, msgspec.Meta(description="When the turn was completed, Unix seconds")]


class MemorySession(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    session_id: str
    data: Annotated[list[MemoryTurn], msgspec.Meta(description="The session's turns, oldest first")]


class MemorySessionDeleted(msgspec.Struct, kw_only=True):
    object: Literal["memory.session.deleted"] = "memory.session.deleted"
    session_id: str
    deleted: Literal[True] = True
    turns: Annotated[int, msgspec.Meta(description="How many turns were erased")]


_SCHEMAS, COMPONENTS = msgspec.json.schema_components(
    (MemorySession, MemorySessionDeleted, ErrorResponse, SessionId), ref_template="#/components/schemas/{name}"
)
_SESSION, _DELETED, _ERROR, _SESSION_ID = _SCHEMAS
_PARAMETERS = [
    {"name": "session_id", "in": "path", "required": True, "description": _SESSION_ID.pop("description"),
     "schema": _SESSION_ID},
]  # fmt: skip


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _openapi(answer: dict[str, Any], description: str) -> dict[str, Any]:
    errors = (
        (400, "Invalid session id"), (401, "Missing or wrong client key"),
        (404, "Memory is disabled (ENABLE_MEMORY=false)"), (503, "The memory store is unavailable"),
    )  # fmt: skip
    responses = {"200": {"description": description, **_json(answer)}}
    responses.update({str(code): {"description": text, **_json(_ERROR)} for code, text in errors})
    return {"parameters": _PARAMETERS, "responses": responses}


async def list_session(request: Request) -> Response:
    memory, tenant, session_id = _memory_call(request)
    turns = await memory.list_turns(tenant, session_id)
    return _answer(MemorySession(session_id=session_id, data=msgspec.convert(turns, list[MemoryTurn])))


async def delete_session(request: Request) -> Response:
    memory, tenant, session_id = _memory_call(request)
    erased = await memory.delete_session(tenant, session_id)
    return _answer(MemorySessionDeleted(session_id=session_id, turns=erased))


router.add_api_route(
    "/sessions/{session_id}",
    list_session,
    methods=["GET"],
    summary="List a session's remembered turns",
    openapi_extra=_openapi(_SESSION, "The session's turns"),
)
router.add_api_route(
    "/sessions/{session_id}",
    delete_session,
    methods=["DELETE"],
    summary="Erase a session's remembered turns (gone from recall at once)",
    openapi_extra=_openapi(_DELETED, "The session was erased"),
)


def _memory_call(request: Request) -> tuple[MemoryService, str, str]:
    """The memory service, the caller's tenant and the session id of the URL (validated)."""
    try:
        session_id = msgspec.convert(request.path_params["session_id"], SessionId)
    except msgspec.ValidationError:
        raise InvalidRequestError(
            "session_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'.",
            param="session_id",
            code="invalid_session_id",
        ) from None
    runtime = runtime_of(request)
    tenant = tenant_of(runtime, request)
    memory = runtime.memory
    if memory is None:
        raise NotFoundError(
            "Conversation memory is disabled on this gateway (ENABLE_MEMORY=false).", code="memory_disabled"
        )
    return memory, tenant, session_id


def _answer(body: msgspec.Struct) -> Response:
    return Response(msgspec.json.encode(body), media_type="application/json")
