"""The running configuration: one frozen ``Runtime``, replaced whole by a reload; what outlives a reload is
shared by every runtime of the process."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ailb.bootstrap import Gateway
from ailb.settings import load_settings
from ailb.tenancy import tenant_id

ENV = {
    "OPENAI_API_KEY": "sk-unit-test-key-1",
    "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    "ENABLE_MEMORY": "false",
    "ENABLE_GRPC": "false",
    "HEALTH_CHECK_INTERVAL": "0",
}


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    env = dict(ENV)
    gateway = Gateway(load_settings(env), env)
    yield gateway
    await gateway.aclose()


def test_a_runtime_cannot_be_changed(gateway: Gateway) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        gateway.runtime.router = gateway.runtime.router  # type: ignore[misc]


async def test_a_reload_swaps_in_a_new_runtime_and_the_old_one_stays_whole(gateway: Gateway) -> None:
    old = gateway.runtime
    gateway._env["AILB_API_KEYS"] = "sk-client-key-1"  # type: ignore[index]
    ok, message = await gateway.reload()
    assert ok, message
    new = gateway.runtime
    assert new is not old and new.router is not old.router and new.service is not old.service
    assert new.settings.api_keys == {"sk-client-key-1"} and new.keys.enabled
    # A request that began before the reload still sees the configuration it started with.
    assert not old.settings.api_keys and not old.keys.enabled and old.service.router is old.router
    # An unchanged deployment keeps its adapter (and its connection pool); the process's parts are shared.
    assert new.providers["openai"] is old.providers["openai"]
    for part in ("metrics", "redactor", "governor", "rate_limits", "shared", "traffic", "started_at"):
        assert getattr(new, part) is getattr(old, part), part
    assert new.loaded_at >= old.loaded_at


async def test_an_invalid_configuration_leaves_the_running_runtime_in_place(gateway: Gateway) -> None:
    old = gateway.runtime
    gateway._env["ROUTING_STRATEGY"] = "no-such-strategy"  # type: ignore[index]
    ok, message = await gateway.reload()
    assert not ok and "ROUTING_STRATEGY" in message
    assert gateway.runtime is old


async def test_collection_limits_belong_to_the_runtime_they_were_loaded_with(
    gateway: Gateway, tmp_path: pathlib.Path
) -> None:
    config = tmp_path / "ailb.yaml"
    config.write_text("client_keys:\n  sk-team-key-1: {collections: [policies]}\n")
    gateway._env["AILB_CONFIG"] = str(config)  # type: ignore[index]
    ok, message = await gateway.reload()
    assert ok, message
    before = gateway.runtime
    config.write_text("client_keys:\n  sk-team-key-1: {collections: [handbook]}\n")
    ok, message = await gateway.reload()
    assert ok, message
    after = gateway.runtime
    tenant = tenant_id("sk-team-key-1")
    # A request that began before the second reload keeps the limits it started with.
    assert before.keys.collections_of(tenant) == frozenset({"policies"})
    assert before.service.collection_limits[tenant] == frozenset({"policies"})
    assert after.keys.collections_of(tenant) == frozenset({"handbook"})
    assert after.service.collection_limits[tenant] == frozenset({"handbook"})
