"""The admin token on the control plane: with ``AILB_ADMIN_TOKEN`` set, every ModuleService call must carry
``authorization: Bearer <token>`` metadata. Without an admin token, ``fallback`` decides (the gateway passes a
check of the client keys, as its HTTP admin endpoints do). Other services (health, reflection) stay open."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

MODULE_SERVICE_PREFIX = "/marchproxy.ModuleService/"


class AdminTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """``token()`` is read on every call, so a reload that changes the token takes effect at once."""

    def __init__(
        self,
        token: Callable[[], str],
        guarded_prefix: str = MODULE_SERVICE_PREFIX,
        fallback: Callable[[str | None], bool] | None = None,
    ) -> None:
        self._token = token
        self._fallback = fallback
        self._prefix = guarded_prefix
        self._deny = grpc.unary_unary_rpc_method_handler(_unauthenticated)

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        if not handler_call_details.method.startswith(self._prefix):
            return await continuation(handler_call_details)
        token = self._token()
        presented = _bearer(handler_call_details.invocation_metadata)
        if token:
            allowed = presented is not None and hmac.compare_digest(presented.encode(), token.encode())
        else:
            allowed = self._fallback is None or self._fallback(presented)
        return await continuation(handler_call_details) if allowed else self._deny


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, credential = str(value).partition(" ")
            return credential.strip() if scheme.lower() == "bearer" else None
    return None


async def _unauthenticated(_request: bytes, context: Any) -> None:
    await context.abort(
        grpc.StatusCode.UNAUTHENTICATED, "this call needs the admin token as 'authorization: Bearer <token>' metadata"
    )
