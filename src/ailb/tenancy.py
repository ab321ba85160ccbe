"""Who is calling: client keys, their tenants and their per-key policy (name, models, collections, limits).

A client key's identity (its tenant) is a hash of the key, computed once at start-up, never the key itself;
its ``name`` (from ``client_keys:``, else the tenant id) is what stats, metrics and logs show. Keys come from
``AILB_API_KEYS`` and from ``client_keys:`` in the config file; with neither, everyone is the default tenant.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ailb.errors import AuthenticationError, PermissionDeniedError
from ailb.governance.periods import DEFAULT_PERIOD, BudgetPeriod
from ailb.settings import ClientKeyConfig

DEFAULT_TENANT = "default"


def tenant_id(key: str) -> str:
    return "t_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A key's limits; ``None`` is no limit. The period applies to the budget and to the usage it reports."""

    rpm: int | None = None
    tpm: int | None = None
    max_budget_usd: float | None = None
    period: BudgetPeriod = DEFAULT_PERIOD


@dataclass(frozen=True, slots=True)
class ClientKey:
    """The caller's identity and policy. ``models``/``collections`` ``None``: all; ``limits`` ``None``: the key
    is not metered (no per-request work at all)."""

    tenant: str
    name: str
    models: frozenset[str] | None = None
    collections: frozenset[str] | None = None
    limits: KeyLimits | None = None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


ANONYMOUS = ClientKey(tenant=DEFAULT_TENANT, name=DEFAULT_TENANT)


def client_key(key: str, config: ClientKeyConfig | None = None) -> ClientKey:
    tenant = tenant_id(key)
    if config is None:
        return ClientKey(tenant=tenant, name=tenant)
    limits = KeyLimits(config.rpm, config.tpm, config.max_budget_usd, config.budget_period) if config.metered else None
    return ClientKey(tenant, config.name or tenant, config.models, config.collections, limits)


class KeyRing:
    """Maps presented client keys to ``ClientKey``s (one dict lookup); with no keys configured everyone is
    ``ANONYMOUS``."""

    def __init__(self, api_keys: Iterable[str], client_keys: Iterable[ClientKeyConfig] = ()) -> None:
        keys = {key: client_key(key) for key in api_keys}
        keys.update({config.key: client_key(config.key, config) for config in client_keys})
        self._keys = keys
        self._collections = {k.tenant: k.collections for k in keys.values() if k.collections is not None}

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @property
    def metered(self) -> bool:
        """Whether any key has limits."""
        return any(key.limits is not None for key in self._keys.values())

    def identify(self, headers: Mapping[str, str]) -> ClientKey:
        """The caller presenting ``headers``; raises ``AuthenticationError`` for a missing or unknown key."""
        if not self._keys:
            return ANONYMOUS
        key = presented_key(headers)
        if not key:
            raise AuthenticationError(
                "Missing API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="missing_api_key",
            )
        found = self._keys.get(key)
        if found is None:
            raise AuthenticationError("Incorrect API key provided.")
        return found

    def tenant_for(self, headers: Mapping[str, str]) -> str:
        return self.identify(headers).tenant

    def accepts(self, key: str | None) -> bool:
        """Whether ``key`` may act for a client: any key when none are configured, else a configured one."""
        return not self._keys or (key is not None and key in self._keys)

    def collection_limits(self) -> Mapping[str, frozenset[str]]:
        """Tenant → the knowledge-base collections its key is limited to (keys without a limit are absent)."""
        return self._collections

    def collections_of(self, tenant: str) -> frozenset[str] | None:
        """The collections ``tenant``'s key may use; ``None`` when it may use every one."""
        return self._collections.get(tenant)


def check_collection_access(permitted: frozenset[str] | None, collections: Sequence[str]) -> None:
    """``PermissionDeniedError`` for the first of ``collections`` outside ``permitted`` (``None``: no limit)."""
    if permitted is None:
        return
    for name in collections:
        if name not in permitted:
            raise PermissionDeniedError(
                f"This API key may not use the knowledge base collection {name!r}.",
                param="rag_collection",
                code="collection_not_allowed",
            )


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
