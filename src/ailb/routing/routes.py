"""Routes, what the control plane's per-route settings (rate limits, traffic weights) apply to: a public model
name (or alias) as a client writes it in ``model``, or ``GLOBAL_ROUTE`` for every request."""

from __future__ import annotations

GLOBAL_ROUTE = "*"
