"""CPU per ``Router.complete`` in process, one deployment against two (the router's own bookkeeping, metrics on).

    python -m bench.router_micro [--strategy load_balanced] [--calls 10000] [--rounds 5]

The provider answers at once, so what is timed is the routing: resolving, selection and the strategy's choice,
the attempt's bookkeeping (circuit, live stats, cost, token calibration) and its Prometheus metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from typing import Any

from ailb.cli import collect_as_served
from ailb.contract import ChatCall, Completion, Usage
from ailb.observability.metrics import Metrics
from ailb.routing.router import Router
from ailb.settings import DeploymentConfig, Settings

MODEL = "bench-model"
ANSWER = Completion(body={"object": "chat.completion", "choices": []}, usage=Usage(500, 16), text="hi")


class InstantProvider:
    def __init__(self, config: DeploymentConfig) -> None:
        self.config = config

    async def complete(self, body: Mapping[str, Any], model: str) -> Completion:
        return ANSWER


def router_of(deployments: int, strategy: str) -> Router:
    configs = tuple(
        DeploymentConfig(name=f"d{i}", provider="openai", base_url=f"https://d{i}.example.com/v1", api_key="k",
                         models=(MODEL,))
        for i in range(deployments)
    )  # fmt: skip
    metrics = Metrics([MODEL], [c.name for c in configs])
    providers: dict[str, Any] = {c.name: InstantProvider(c) for c in configs}
    router = Router(Settings(routing_strategy=strategy, deployments=configs), providers, observer=metrics)
    router.tokens.warm()
    return router


async def per_call_us(router: Router, calls: int) -> float:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 16}
    call = ChatCall(body=body, model=MODEL, stream=False, include_usage=False, tenant="t", strategy=None)
    started = time.process_time()
    for _ in range(calls):
        await router.complete(call)
    return (time.process_time() - started) / calls * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy", default="load_balanced")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    routers = {n: router_of(n, args.strategy) for n in (1, 2)}
    collect_as_served()
    times: dict[int, list[float]] = {1: [], 2: []}
    for router in routers.values():
        await per_call_us(router, args.calls // 5)  # warm-up
    for _ in range(args.rounds):  # interleaved, so a disturbance hits both
        for n, router in routers.items():
            times[n].append(await per_call_us(router, args.calls))
    for n, values in times.items():
        values.sort()
        median = values[len(values) // 2]
        print(f"{n} deployment(s), {args.strategy}: {values[0]:.1f} µs per complete (min), {median:.1f} (median)")


if __name__ == "__main__":
    asyncio.run(main())
