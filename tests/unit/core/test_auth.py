from __future__ import annotations

import pytest

from ailb.errors import AuthenticationError, PermissionDeniedError
from ailb.http.auth import DEFAULT_TENANT, KeyRing, check_admin, tenant_id


def test_without_keys_everyone_is_the_default_tenant() -> None:
    assert KeyRing([]).tenant_for({}) == DEFAULT_TENANT


def test_tenant_is_a_hash_of_the_key_from_either_header() -> None:
    ring = KeyRing(["key-a", "key-b"])
    by_bearer = ring.tenant_for({"authorization": "Bearer key-a"})
    by_header = ring.tenant_for({"x-api-key": "key-a"})
    assert by_bearer == by_header == tenant_id("key-a")
    assert "key-a" not in by_bearer
    assert ring.tenant_for({"authorization": "Bearer key-b"}) != by_bearer


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer nope"}, {"x-api-key": "nope"}, {"authorization": "Basic key-a"}]
)
def test_missing_or_wrong_keys_are_401(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError) as info:
        KeyRing(["key-a"]).tenant_for(headers)
    assert info.value.status == 401


def test_admin_token() -> None:
    check_admin("", {})
    check_admin("s3cret", {"authorization": "Bearer s3cret"})
    with pytest.raises(AuthenticationError):
        check_admin("s3cret", {})
    with pytest.raises(PermissionDeniedError):
        check_admin("s3cret", {"authorization": "Bearer wrong"})


def test_collection_limits_are_keyed_by_tenant() -> None:
    limits = KeyRing(["k"]).collection_limits({"k": frozenset({"docs"})})
    assert limits == {tenant_id("k"): frozenset({"docs"})}
