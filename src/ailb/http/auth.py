"""Client keys and the admin token.

A client key's identity (its tenant) is a hash of the key, computed once at start-up, never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from starlette.requests import HTTPConnection

from ailb.errors import AuthenticationError, PermissionDeniedError

DEFAULT_TENANT = "default"


def tenant_id(key: str) -> str:
    return "t_" + hashlib.sha256(key.encode()).hexdigest()[:24]


class KeyRing:
    """Maps presented client keys to tenants; with no keys configured everyone is the default tenant."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._tenants = {key: tenant_id(key) for key in keys}

    @property
    def enabled(self) -> bool:
        return bool(self._tenants)

    def tenant_for(self, headers: Mapping[str, str]) -> str:
        if not self._tenants:
            return DEFAULT_TENANT
        key = presented_key(headers)
        if not key:
            raise AuthenticationError(
                "Missing API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="missing_api_key",
            )
        tenant = self._tenants.get(key)
        if tenant is None:
            raise AuthenticationError("Incorrect API key provided.")
        return tenant

    def accepts(self, key: str | None) -> bool:
        """Whether ``key`` may act for a client: any key when none are configured, else a configured one."""
        return not self._tenants or (key is not None and key in self._tenants)

    def collection_limits(self, limits: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
        """Re-key per-client-key collection limits by tenant."""
        return {tenant_id(key): names for key, names in limits.items()}


def presented_key(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    return headers.get("x-api-key", "").strip()


def check_admin(token: str, headers: Mapping[str, str]) -> None:
    if not token:
        return
    presented = presented_key(headers)
    if not presented:
        raise AuthenticationError("This endpoint requires the admin token as 'Authorization: Bearer <token>'.")
    if not hmac.compare_digest(presented.encode(), token.encode()):
        raise PermissionDeniedError("The admin token is not valid.")


def check_metrics_token(token: str, headers: Mapping[str, str]) -> None:
    """When ``METRICS_TOKEN`` is set, ``/metrics`` needs ``Authorization: Bearer <METRICS_TOKEN>``."""
    if not token:
        return
    scheme, _, presented = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise AuthenticationError(
            "/metrics requires 'Authorization: Bearer <METRICS_TOKEN>'.", code="invalid_metrics_token"
        )


def tenant_of(request: HTTPConnection) -> str:
    """The tenant of the client calling ``request`` (raises ``AuthenticationError``)."""
    return request.app.state.gateway.keys.tenant_for(request.headers)  # type: ignore[no-any-return]


def require_admin(request: HTTPConnection) -> None:
    """Raise unless ``request`` carries the admin token (when ``AILB_ADMIN_TOKEN`` is set).

    Without an admin token, admin endpoints fall back to the client keys (when ``AILB_API_KEYS`` is set).
    """
    gateway = request.app.state.gateway
    if gateway.settings.admin_token:
        check_admin(gateway.settings.admin_token, request.headers)
    else:
        gateway.keys.tenant_for(request.headers)
