"""Conversation memory of the calling tenant: list a session's turns, erase a session.

A session id names a session only within the caller's tenant (its client key): another tenant's session of
the same name is never visible here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.requests import Request

from ailb.contract import SESSION_ID_PATTERN
from ailb.errors import NotFoundError
from ailb.http.auth import tenant_of

if TYPE_CHECKING:
    from ailb.memory.service import MemoryService

router = APIRouter(prefix="/v1/memory", tags=["memory"])

SessionId = Annotated[
    str,
    Path(
        description="The session id sent as `session_id` or `X-Session-ID` with chat requests",
        pattern=SESSION_ID_PATTERN,
        examples=["user-42:support"],
    ),
]


class MemoryTurn(BaseModel):
    id: str
    user: str = Field(description="The user's message")
    assistant: str = Field(description="The assistant's whole reply")
    model: str
    deployment: str
    prompt_tokens: int
    completion_tokens: int
    timestamp: float = Field(description="When the turn was completed, Unix seconds")


class MemorySession(BaseModel):
    object: Literal["list"] = "list"
    session_id: str
    data: list[MemoryTurn] = Field(description="The session's turns, oldest first")


class MemorySessionDeleted(BaseModel):
    object: Literal["memory.session.deleted"] = "memory.session.deleted"
    session_id: str
    deleted: Literal[True] = True
    turns: int = Field(description="How many turns were erased")


class MemoryErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class MemoryErrorResponse(BaseModel):
    error: MemoryErrorDetail


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": MemoryErrorResponse, "description": "Invalid session id"},
    401: {"model": MemoryErrorResponse, "description": "Missing or wrong client key"},
    404: {"model": MemoryErrorResponse, "description": "Memory is disabled (ENABLE_MEMORY=false)"},
    503: {"model": MemoryErrorResponse, "description": "The memory store is unavailable"},
}


@router.get(
    "/sessions/{session_id}",
    response_model=MemorySession,
    responses=_ERRORS,
    summary="List a session's remembered turns",
)
async def list_session(request: Request, session_id: SessionId) -> MemorySession:
    memory, tenant = _memory_and_tenant(request)
    turns = await memory.list_turns(tenant, session_id)
    return MemorySession(session_id=session_id, data=[MemoryTurn(**turn) for turn in turns])


@router.delete(
    "/sessions/{session_id}",
    response_model=MemorySessionDeleted,
    responses=_ERRORS,
    summary="Erase a session's remembered turns (gone from recall at once)",
)
async def delete_session(request: Request, session_id: SessionId) -> MemorySessionDeleted:
    memory, tenant = _memory_and_tenant(request)
    erased = await memory.delete_session(tenant, session_id)
    return MemorySessionDeleted(session_id=session_id, turns=erased)


def _memory_and_tenant(request: Request) -> tuple[MemoryService, str]:
    tenant = tenant_of(request)
    memory: MemoryService | None = request.app.state.gateway.memory
    if memory is None:
        raise NotFoundError(
            "Conversation memory is disabled on this gateway (ENABLE_MEMORY=false).", code="memory_disabled"
        )
    return memory, tenant
