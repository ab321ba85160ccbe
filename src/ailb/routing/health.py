"""Active health checks that spend no tokens, and Ollama model discovery.

Every ``interval`` seconds each deployment is asked a token-free question (``provider.check_health()``,
or ``provider.list_models()`` for an Ollama deployment that discovers its models). A pass closes an open
circuit; a failure counts like a failed request (a 401/403 opens the circuit at once); an upstream refusal
of the check itself (e.g. 404) says nothing about health and is ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from ailb.errors import UpstreamError, UpstreamStatusError
from ailb.routing.attempts import AttemptRecorder
from ailb.routing.deployment import Deployment
from ailb.routing.retry import is_client_error, is_misconfigured

log = logging.getLogger("ailb.routing")

PROBE_TIMEOUT = 10.0


class HealthMonitor:
    def __init__(
        self,
        deployments: Sequence[Deployment],
        interval: float,
        recorder: AttemptRecorder,
        clock: Callable[[], float],
        on_models_changed: Callable[[], None],
    ) -> None:
        self._deployments = tuple(deployments)
        self.interval = interval
        self._recorder = recorder
        self._clock = clock
        self._on_models_changed = on_models_changed
        self._task: asyncio.Task[None] | None = None

    async def discover(self) -> None:
        """Ask every Ollama deployment without configured models what it serves."""
        found = await asyncio.gather(*(self._discover(d) for d in self._deployments if d.discovers_models))
        if any(found):
            self._on_models_changed()

    async def check_all(self) -> None:
        changed = await asyncio.gather(*(self._check(d) for d in self._deployments))
        if any(changed):
            self._on_models_changed()

    def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="ailb-health-checks")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_all()
            except Exception:  # one bad round must not end the checks for good
                log.exception("health check round failed")

    async def _discover(self, deployment: Deployment) -> bool:
        try:
            models = await asyncio.wait_for(deployment.provider.list_models(), self._timeout(deployment))
        except (UpstreamError, TimeoutError) as exc:
            detail = exc.log_message if isinstance(exc, UpstreamError) else _describe(deployment, exc)
            log.warning("deployment %s: model discovery failed: %s", deployment.name, detail)
            return False
        changed = deployment.set_models(models)
        if changed:
            log.info("deployment %s serves %s", deployment.name, ", ".join(deployment.models) or "no models")
        return changed

    async def _check(self, deployment: Deployment) -> bool:
        """One check; ``True`` when the deployment's discovered models changed."""
        changed = False
        try:
            if deployment.discovers_models:
                models = await asyncio.wait_for(deployment.provider.list_models(), self._timeout(deployment))
                changed = deployment.set_models(models)
            else:
                await asyncio.wait_for(deployment.provider.check_health(), self._timeout(deployment))
        except (UpstreamError, TimeoutError) as exc:
            self._failed(deployment, exc)
            return False
        except Exception as unexpected:
            log.error("deployment %s: health check raised %r", deployment.name, unexpected)
            return False
        if deployment.circuit.recovered():
            deployment.misconfigured_status = None
            log.info("deployment %s passed its health check", deployment.name)
            self._recorder.announce(deployment)
        return changed

    def _failed(self, deployment: Deployment, exc: UpstreamError | TimeoutError) -> None:
        if isinstance(exc, UpstreamError) and is_client_error(exc):
            return
        message = _describe(deployment, exc)
        deployment.stats.note_error(f"health check: {message}", self._clock())
        detail = exc.log_message if isinstance(exc, UpstreamError) else message
        if isinstance(exc, UpstreamStatusError) and is_misconfigured(exc):
            deployment.misconfigured_status = exc.upstream_status
            flipped = deployment.circuit.trip(probe=False)
        else:
            flipped = deployment.circuit.record_failure(probe=False)
        log.warning("deployment %s failed its health check: %s", deployment.name, detail)
        if flipped:
            self._recorder.announce(deployment)

    @staticmethod
    def _timeout(deployment: Deployment) -> float:
        return min(PROBE_TIMEOUT, deployment.config.timeouts.total)


def _describe(deployment: Deployment, exc: BaseException) -> str:
    if isinstance(exc, UpstreamError):
        return deployment.redact(exc.message)
    return "no answer in time"
