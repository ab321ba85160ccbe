from __future__ import annotations

from pathlib import Path

from ailb.control import codegen
from ailb.control.generated import module_service_pb2 as pb

REPO = Path(__file__).resolve().parents[3]


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    written = codegen.generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(codegen.GENERATED_FILES)
    for name in codegen.GENERATED_FILES:
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        committed = (codegen.GENERATED_DIR / name).read_text(encoding="utf-8")
        assert fresh == committed, f"{name} is stale: run `python -m ailb.control.codegen`"


def test_service_module_imports_its_messages_relatively(tmp_path: Path) -> None:
    codegen.generate(tmp_path)
    text = (tmp_path / "module_service_pb2_grpc.py").read_text(encoding="utf-8")
    assert "from . import module_service_pb2 as" in text
    assert "from marchproxy import" not in text


def test_packaged_proto_is_the_published_one() -> None:
    published = REPO / "proto" / "marchproxy" / "module_service.proto"
    assert codegen.PROTO_FILE.read_bytes() == published.read_bytes()


def test_wire_names_and_field_numbers() -> None:
    service = pb.DESCRIPTOR.services_by_name["ModuleService"]
    assert pb.DESCRIPTOR.package == "marchproxy"
    assert [m.name for m in service.methods] == [
        "GetStatus", "GetRoutes", "ApplyRateLimit", "GetMetrics", "SetTrafficWeight", "Reload",
    ]  # fmt: skip
    numbers = {
        name: {f.name: f.number for f in message.fields}
        for name, message in pb.DESCRIPTOR.message_types_by_name.items()
    }
    assert numbers["StatusResponse"] == {
        "module_id": 1, "module_type": 2, "version": 3, "health": 4, "uptime_seconds": 5, "envoy_version": 6,
        "metadata": 7,
    }  # fmt: skip
    assert numbers["RouteConfig"] == {
        "name": 1, "prefix": 2, "cluster_name": 3, "hosts": 4, "timeout_seconds": 5, "headers": 6, "enabled": 7,
        "rate_limit": 8,
    }  # fmt: skip
    assert numbers["MetricsResponse"] == {
        "timestamp": 1, "total_connections": 2, "active_connections": 3, "total_requests": 4,
        "requests_per_second": 5, "latency": 6, "status_codes": 7, "routes": 8,
    }  # fmt: skip
    assert numbers["LatencyMetrics"] == {"p50_ms": 1, "p90_ms": 2, "p95_ms": 3, "p99_ms": 4, "avg_ms": 5}
    assert numbers["RateLimitConfig"] == {"requests_per_second": 1, "burst_size": 2, "enabled": 3}
    assert numbers["TrafficWeightResponse"] == {"success": 1, "message": 2, "applied_weights": 3}
    assert numbers["ReloadResponse"] == {"success": 1, "message": 2, "reload_timestamp": 3}
    assert dict(pb.HealthStatus.items()) == {"HEALTHY": 0, "UNHEALTHY": 1, "DEGRADED": 2}
