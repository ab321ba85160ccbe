"""The admin token on the control plane: with ``AILB_ADMIN_TOKEN`` set, every ModuleService call must carry
``authorization: Bearer <token>`` metadata. Other services (health, reflection) stay open."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

MODULE_SERVICE_PREFIX = "/marchproxy.ModuleService/"


class AdminTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """``token()`` is read on every call, so a reload that changes the token takes effect at once."""

    def __init__(self, token: Callable[[], str], guarded_prefix: str = MODULE_SERVICE_PREFIX) -> None:
        self._token = token
        self._prefix = guarded_prefix
        self._deny = grpc.unary_unary_rpc_method_handler(_unauthenticated)

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        token = self._token()
        if not token or not handler_call_details.method.startswith(self._prefix):
            return await continuation(handler_call_details)
        presented = _bearer(handler_call_details.invocation_metadata)
        if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
            return self._deny
        return await continuation(handler_call_details)


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
