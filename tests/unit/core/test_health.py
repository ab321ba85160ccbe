"""One overall-health rule for /healthz and gRPC GetStatus."""

from __future__ import annotations

import pytest

from ailb.health import gateway_status


@pytest.mark.parametrize(
    ("routing", "memory", "rag", "expected"),
    [
        ("ok", "ok", "disabled", "ok"),
        ("ok", "disabled", "disabled", "ok"),
        ("ok", "loading", "disabled", "degraded"),
        ("ok", "ok", "degraded", "degraded"),
        ("degraded", "ok", "ok", "degraded"),
        ("unavailable", "ok", "ok", "unavailable"),
        ("unavailable", "degraded", "loading", "unavailable"),
    ],
)
def test_overall_status(routing: str, memory: str, rag: str, expected: str) -> None:
    assert gateway_status(routing, memory, rag) == expected


class LoadingStore:
    def status(self) -> str:
        return "loading"

    async def aclose(self) -> None:
        return None


async def test_healthz_and_get_status_agree_while_the_model_loads() -> None:
    from dataclasses import replace

    from ailb.bootstrap import Gateway
    from ailb.control.generated import module_service_pb2 as pb
    from ailb.control.servicer import module_health
    from ailb.settings import DeploymentConfig, MemoryConfig, Settings

    deployment = DeploymentConfig(name="a", provider="openai", base_url="http://127.0.0.1:9/v1", models=("m",))
    gateway = Gateway(Settings(deployments=(deployment,), memory=MemoryConfig(enabled=False)))
    try:
        runtime = gateway.runtime
        assert runtime.health()["status"] == "ok" and module_health(runtime, 1)[0] == pb.HEALTHY
        runtime = replace(runtime, memory=LoadingStore())  # type: ignore[arg-type]
        assert runtime.health()["status"] == "degraded" and module_health(runtime, 1)[0] == pb.DEGRADED
    finally:
        await gateway.aclose()
