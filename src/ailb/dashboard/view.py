"""``GET /api/dashboard``: everything the dashboard shows, in one JSON document.

Deployments come from the routing statistics (``/api/routing/stats``: error texts redacted, at most 300
characters); the traffic weights per route, memory and knowledge-base status with the collections, the overall
request figures and the chart samples are added here. Store paths never appear: memory and knowledge bases say
only whether their ChromaDB is embedded or a server.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ailb import __version__
from ailb.errors import AILBError

if TYPE_CHECKING:
    from ailb.http.ports import HttpRuntime
    from ailb.routing.router import Router

COLLECTIONS_TTL = 10.0  # seconds a listing of the knowledge-base collections is reused between polls


class CollectionCache:
    """The knowledge-base collections, listed at most every ``COLLECTIONS_TTL`` seconds (a store call)."""

    def __init__(self) -> None:
        self._at = -COLLECTIONS_TTL
        self._listing: list[dict[str, Any]] | None = None

    async def listing(self, runtime: HttpRuntime) -> list[dict[str, Any]] | None:
        """The collections, or ``None`` while the store does not answer."""
        now = time.monotonic()
        if runtime.rag is not None and now - self._at >= COLLECTIONS_TTL:
            try:
                self._listing = [c.as_dict() for c in await runtime.rag.list_collections()]
            except AILBError:
                self._listing = None
            self._at = now
        return self._listing


async def dashboard_view(
    runtime: HttpRuntime, cache: CollectionCache, visible: frozenset[str] | None
) -> dict[str, Any]:
    """The dashboard's document; ``visible`` limits the collections shown (a client key limited to some)."""
    router = runtime.router
    stats = router.stats()
    snapshot = runtime.metrics.snapshot()
    return {
        "gateway": {
            "module_id": runtime.settings.module_id,
            "version": __version__,
            "status": runtime.health()["status"],
            "uptime_seconds": round(time.time() - runtime.started_at),
            "reloaded_at": round(runtime.loaded_at),
            "generated_at": time.time(),
        },
        "requests": {
            "total": snapshot.total_requests,
            "active": snapshot.active_requests,
            "per_second": round(snapshot.requests_per_second, 3),
            "p50_ms": round(snapshot.latency.p50_ms, 3),
            "p95_ms": round(snapshot.latency.p95_ms, 3),
            "status_codes": snapshot.status_codes,
        },
        "strategy": stats["strategy"],
        "retry_budget": stats["retry_budget"],
        "deployments": stats["deployments"],
        "routes": _routes(router),
        "memory": _memory(runtime),
        "rag": await _rag(runtime, cache, visible),
        "series": runtime.traffic.snapshot(),
    }


def _routes(router: Router) -> list[dict[str, Any]]:
    """Per public model: each deployment's traffic weight (0-100) and its share of weighted traffic."""
    weights = {d.name: d.config.weight for d in router.deployments}
    routes = []
    for route, names in router.public_models().items():
        traffic = router.traffic_weights(route)
        effective = {name: weights.get(name, 0.0) * traffic.get(name, 100) / 100 for name in names}
        total = sum(effective.values())
        routes.append(
            {
                "route": route,
                "deployments": [
                    {
                        "name": name,
                        "traffic": traffic.get(name, 100),
                        "weight": weights.get(name, 0.0),
                        "share": round(effective[name] / total, 4) if total else 0.0,
                    }
                    for name in names
                ],
            }
        )
    return routes


def _memory(runtime: HttpRuntime) -> dict[str, Any]:
    memory = runtime.memory
    if memory is None:
        return {"status": "disabled"}
    stats = memory.stats()
    return {
        "status": stats["status"],
        "store": _store_kind(runtime),
        "collection": getattr(memory.store, "collection", None),
        "embedder": stats["embedder"],
        "stored_turns": stats["stored_turns"],
        "queued": stats["queued"],
        "cached_sessions": stats["cached_sessions"],
        "dropped_turns": stats["dropped_turns"],
        "failures": sum(stats["failures"].values()),
    }


async def _rag(runtime: HttpRuntime, cache: CollectionCache, visible: frozenset[str] | None) -> dict[str, Any]:
    rag = runtime.rag
    if rag is None:
        return {"status": "disabled", "collections": []}
    listing = await cache.listing(runtime)
    if listing is not None and visible is not None:
        listing = [c for c in listing if c["name"] in visible]
    return {
        "status": rag.status(),
        "store": _store_kind(runtime),
        "embedder": rag.embedder.name,
        "collections": listing,
    }


def _store_kind(runtime: HttpRuntime) -> str:
    return "ChromaDB server" if runtime.settings.chroma_host else "embedded ChromaDB"
