"""The gateway's overall health, one rule for ``/healthz`` and the gRPC ``GetStatus``."""

from __future__ import annotations

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"
WORKING_STORE_STATES = frozenset({"ok", "disabled"})


def gateway_status(routing: str, *stores: str) -> str:
    """``routing`` is the router's status (``routing.report.overall_status``); ``stores`` those of memory, RAG
    and the shared state (Redis).

    ok: every deployment up and serving, and every enabled store working; degraded: something is down or
    still loading (the embedding model) but models can be served; unavailable: no model can be served.
    """
    if routing == UNAVAILABLE:
        return UNAVAILABLE
    if routing == OK and all(state in WORKING_STORE_STATES for state in stores):
        return OK
    return DEGRADED
