"""The OpenAI shapes every OpenAI-style surface shares, for the OpenAPI schema: the model list and the error."""

from __future__ import annotations

from typing import Literal

from ailb.ingress.validation import Schema


class ModelCard(Schema):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(Schema):
    object: Literal["list"]
    data: list[ModelCard]


class ErrorDetail(Schema):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(Schema):
    error: ErrorDetail

