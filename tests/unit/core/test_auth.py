from __future__ import annotations

import pytest

from ailb.errors import AuthenticationError, PermissionDeniedError
from ailb.settings import ClientKeyConfig
from ailb.tenancy import ANONYMOUS, DEFAULT_TENANT, KeyRing, check_admin, tenant_id


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
    ring = KeyRing(["k", "other"], [ClientKeyConfig(key="k", collections=frozenset({"docs"}))])
    assert ring.collection_limits() == {tenant_id("k"): frozenset({"docs"})}


def test_client_keys_are_keys_too_and_carry_their_policy() -> None:
    config = ClientKeyConfig(key="team-a-key", name="team-a", models=frozenset({"fast"}), rpm=10)
    ring = KeyRing([], [config, ClientKeyConfig(key="plain-key")])
    team = ring.identify({"authorization": "Bearer team-a-key"})
    assert (team.name, team.tenant, team.models) == ("team-a", tenant_id("team-a-key"), frozenset({"fast"}))
    assert team.limits is not None and team.limits.rpm == 10 and team.limits.tpm is None
    assert team.may_use("fast") and not team.may_use("gpt-4o")
    plain = ring.identify({"x-api-key": "plain-key"})
    assert plain.name == plain.tenant == tenant_id("plain-key")  # shown by its hash, never the key
    assert plain.limits is None and plain.may_use("anything")
    assert ring.enabled and ring.metered and ring.accepts("plain-key") and not ring.accepts("nope")
    assert not KeyRing(["x"]).metered


def test_without_keys_the_caller_is_anonymous() -> None:
    assert KeyRing([]).identify({"authorization": "Bearer whatever"}) is ANONYMOUS
