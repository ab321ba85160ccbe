"""The HTTP glue of tenancy (``ailb.tenancy``): who is calling a route, and admin endpoints."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.requests import HTTPConnection

from ailb.errors import AuthenticationError
from ailb.http.ports import HttpRuntime
from ailb.tenancy import ClientKey, check_admin


def client_of(runtime: HttpRuntime, request: HTTPConnection) -> ClientKey:
    """The client key calling ``request`` (raises ``AuthenticationError``)."""
    return runtime.keys.identify(request.headers)


def check_metrics_token(token: str, headers: Mapping[str, str]) -> None:
    """When ``METRICS_TOKEN`` is set, ``/metrics`` needs ``Authorization: Bearer <METRICS_TOKEN>``."""
    if not token:
        return
    scheme, _, presented = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise AuthenticationError(
            "/metrics requires 'Authorization: Bearer <METRICS_TOKEN>'.", code="invalid_metrics_token"
        )


def tenant_of(runtime: HttpRuntime, request: HTTPConnection) -> str:
    """The tenant of the client calling ``request`` (raises ``AuthenticationError``)."""
    return runtime.keys.identify(request.headers).tenant


def require_admin(runtime: HttpRuntime, request: HTTPConnection) -> None:
    """Raise unless ``request`` carries the admin token (when ``AILB_ADMIN_TOKEN`` is set).

    Without an admin token, admin endpoints fall back to the client keys (when any are configured).
    """
    admin_token = runtime.settings.admin_token
    if admin_token:
        check_admin(admin_token, request.headers)
    else:
        runtime.keys.identify(request.headers)
