"""The HTTP glue of tenancy (``ailb.tenancy``): who is calling a route, and admin endpoints."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from ailb.tenancy import ClientKey, check_admin


def client_of(request: HTTPConnection) -> ClientKey:
    """The client key calling ``request`` (raises ``AuthenticationError``)."""
    return request.app.state.gateway.keys.identify(request.headers)  # type: ignore[no-any-return]


def tenant_of(request: HTTPConnection) -> str:
    """The tenant of the client calling ``request`` (raises ``AuthenticationError``)."""
    return client_of(request).tenant


def require_admin(request: HTTPConnection) -> None:
    """Raise unless ``request`` carries the admin token (when ``AILB_ADMIN_TOKEN`` is set).

    Without an admin token, admin endpoints fall back to the client keys (when any are configured).
    """
    gateway = request.app.state.gateway
    if gateway.settings.admin_token:
        check_admin(gateway.settings.admin_token, request.headers)
    else:
        gateway.keys.identify(request.headers)
