"""Two real ``ailb serve`` processes sharing one real Redis (``REDIS_URL``): a client key's rpm holds for both,
a control call to one governs the other, and a Redis that stops mid-run degrades the fleet to per-instance limits
(still answering) until it returns."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ailb.control.generated import module_service_pb2 as pb
from tests.integration.control_support import ADMIN_TOKEN, MODEL, Fakes, config_yaml, started_fakes
from tests.integration.fleet_support import AilbProcess, metric_total, poll
from tests.redis_server import RedisServer

TEAM_KEY = "team-a-client-key-0001"  # rpm 10
SPARE_KEY = "team-b-client-key-0002"  # rpm 10, used only while Redis is down
OPS_KEY = "ops-client-key-0003"  # no limits
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GOVERN_SECONDS = 2.0  # a control call to one instance governs the others within this


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with started_fakes(["blue", "green"]) as started:
        yield started


def fleet_config(tmp_path: Path, fakes: Fakes) -> str:
    path = tmp_path / "ailb.yaml"
    keys = "\n".join(
        f"  {key}:\n    name: {name}\n    rpm: 10" for key, name in ((TEAM_KEY, "team-a"), (SPARE_KEY, "team-b"))
    )
    keys += f"\n  {OPS_KEY}:\n    name: ops"
    path.write_text(config_yaml(fakes) + "client_keys:\n" + keys + "\n")
    return str(path)


def start_two(tmp_path: Path, fakes: Fakes, redis: RedisServer, **env: str) -> tuple[AilbProcess, AilbProcess]:
    settings = {"REDIS_URL": redis.url, "AILB_CONFIG": fleet_config(tmp_path, fakes), **env}
    return AilbProcess(tmp_path, settings).start(), AilbProcess(tmp_path, settings).start()


def stopped(*processes: AilbProcess) -> bool:
    """Stop every one (SIGTERM); whether all drained and exited cleanly (uvicorn re-raises the SIGTERM it
    handled, so a clean exit may read as killed by it)."""
    codes = [process.stop() for process in processes]
    return all(code in (0, -signal.SIGTERM) for code in codes)


def test_a_keys_rpm_holds_across_two_instances(tmp_path: Path, fakes: Fakes, redis_server: RedisServer) -> None:
    first, second = start_two(tmp_path, fakes, redis_server)
    try:
        answers = [(first if i % 2 == 0 else second).chat(key=TEAM_KEY) for i in range(16)]
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == 10, statuses  # 10 for the fleet, not 10 per instance
        refused = [a for a in answers if a.status_code == 429]
        assert len(refused) == 6 and all(a.json()["error"]["code"] == "rate_limit_exceeded" for a in refused)
        usage = [p.get("/v1/usage", headers={"Authorization": f"Bearer {TEAM_KEY}"}).json() for p in (first, second)]
        assert usage[0]["requests"] == usage[1]["requests"] == 10  # one ledger, read the same through either
    finally:
        assert stopped(first, second)


def test_control_calls_to_one_instance_govern_the_other(
    tmp_path: Path, fakes: Fakes, redis_server: RedisServer
) -> None:
    first, second = start_two(tmp_path, fakes, redis_server)
    try:
        with first.control() as control_first, second.control() as control_second:
            assert control_first.weights(MODEL, blue=0, green=100).success
            poll(lambda: second.get("/api/routing/stats", headers=ADMIN).json()["traffic_weights"],
                 lambda weights: weights.get(MODEL) == {"blue": 0, "green": 100}, GOVERN_SECONDS,
                 "the weights set through the first instance, on the second")  # fmt: skip
            assert {second.chat(key=OPS_KEY).headers["x-ailb-deployment"] for _ in range(8)} == {"green"}

            assert control_second.rate_limit(MODEL, 1, 3).success
            limit = pb.RateLimitConfig(requests_per_second=1, burst_size=3, enabled=True)
            poll(lambda: {r.name: r.rate_limit for r in control_first.routes().routes}.get(MODEL),
                 lambda found: found == limit, GOVERN_SECONDS,
                 "the rate limit applied through the second instance, on the first")  # fmt: skip
            statuses = [(first if i % 2 else second).chat(key=OPS_KEY).status_code for i in range(8)]
            assert 429 in statuses and statuses.count(200) <= 5  # one bucket of 3 (refilled at 1/s) for both
            assert control_first.routes() == control_second.routes()  # routes, limits and version alike
            status_first, status_second = control_first.status(), control_second.status()
            assert status_first.metadata["shared_state"] == status_second.metadata["shared_state"] == "ok"

            reloaded = control_first.call("Reload", pb.ReloadRequest())
            assert reloaded.success  # the second reloads too, and the routes version goes up once for both
            poll(lambda: control_second.routes().version, lambda version: version == 2, GOVERN_SECONDS,
                 "the reload through the first instance, on the second")  # fmt: skip
            assert control_first.routes() == control_second.routes()
            weights = second.get("/api/routing/stats", headers=ADMIN).json()["traffic_weights"]
            assert weights == {MODEL: {"blue": 0, "green": 100}}  # kept through the reload
    finally:
        assert stopped(first, second)


def test_redis_stopped_mid_run(tmp_path: Path, fakes: Fakes, own_redis: RedisServer) -> None:
    first, second = start_two(tmp_path, fakes, own_redis, EXPECTED_INSTANCES="2")
    try:
        assert first.get("/healthz").json()["shared_state"] == "ok"
        assert first.chat(key=TEAM_KEY).status_code == 200

        own_redis.stop()
        poll(lambda: first.get("/healthz").json(), lambda h: h["status"] == h["shared_state"] == "degraded",
             10, "/healthz degraded")  # fmt: skip
        # still answered, with the key's rpm (10) divided by the 2 expected instances
        statuses = [first.chat(key=SPARE_KEY).status_code for _ in range(8)]
        assert statuses.count(200) == 5 and statuses.count(429) == 3, statuses
        assert second.chat(key=OPS_KEY).status_code == 200
        assert metric_total(first.get("/metrics").text, "ailb_shared_state_failures_total") > 0
        with first.control() as control:
            refused = control.weights(MODEL, blue=100, green=0)
            assert not refused.success and "unavailable" in refused.message

        own_redis.start()
        for instance in (first, second):
            poll(lambda i=instance: i.get("/healthz").json(), lambda h: h["status"] == "ok" and
                 h["shared_state"] == "ok", 20, "recovery")  # fmt: skip
        with first.control() as control:  # the instances follow each other again
            assert control.weights(MODEL, blue=100, green=0).success
        poll(lambda: second.get("/api/routing/stats", headers=ADMIN).json()["traffic_weights"],
             lambda weights: weights.get(MODEL) == {"blue": 100, "green": 0}, GOVERN_SECONDS, "weights after recovery")
        usage = first.get("/v1/usage", headers={"Authorization": f"Bearer {SPARE_KEY}"}).json()
        assert usage["requests"] == 5  # what was admitted during the outage was merged into Redis
    finally:
        assert stopped(first, second)
