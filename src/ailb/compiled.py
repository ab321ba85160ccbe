"""The hot-path modules a compiled install (``pip install .`` where a C compiler is, or ``AILB_COMPILE=1``) builds
as C extensions with mypyc, and which of them run compiled in this process.

The compiled modules are the same sources (``mypy --strict`` clean, which mypyc needs): a plain install (editable,
without a C compiler, or ``AILB_COMPILE=0``) runs them as Python, with the same behaviour. ``setup.py`` reads
``HOT_MODULES`` and ``MYPYC_FLAGS`` from this file's source, since a build cannot import ailb: they stay literal
tuples.
"""

from __future__ import annotations

import importlib

HOT_MODULES = (
    # the server protocol, the chat handler and the request's parsing
    "ailb.http.protocol",
    "ailb.http.exchange",
    "ailb.http.chat",
    "ailb.http.parsing",
    "ailb.ingress.chat.request",
    # the OpenAI-compatible upstream: the request, the answer, the stream reader; scrubbing and redaction
    "ailb.providers.openai.request",
    "ailb.providers.openai.response",
    "ailb.providers.openai.stream",
    "ailb.providers.scrub",
    "ailb.redaction",
    # routing: the router, its selection and strategies, attempts, deadlines, circuits, live stats, prices
    "ailb.routing.router",
    "ailb.routing.selection",
    "ailb.routing.attempts",
    "ailb.routing.streaming",
    "ailb.routing.deadline",
    "ailb.routing.circuit",
    "ailb.routing.stats",
    "ailb.routing.pricing",
    "ailb.routing.retry",
    "ailb.routing.deployment",
    "ailb.routing.catalog",
    "ailb.routing.ratelimit",
    "ailb.routing.weights",
    "ailb.routing.output_caps",
    "ailb.routing.strategies.base",
    "ailb.routing.strategies.cost",
    "ailb.routing.strategies.failover",
    "ailb.routing.strategies.latency",
    "ailb.routing.strategies.load",
    "ailb.routing.strategies.weighted",
    # a request's metrics and context
    "ailb.observability.metrics",
    "ailb.observability.plain_metrics",
    "ailb.observability.stats",
    "ailb.observability.context",
)
# mypy's view of the code when compiling: the project's configuration and whatever the build's environment holds
# are left out, and every third-party import is Any. A compile then does not depend on which versions of the
# dependencies, or of their stubs, are installed (none are when pip builds the wheel).
# Modules imported but not compiled are read for their types only: their errors under this view do not matter.
MYPYC_FLAGS = ("--config-file=", "--no-site-packages", "--ignore-missing-imports", "--follow-imports=silent")


def compiled_modules() -> list[str]:
    """The hot-path modules this process runs as C extensions (none for a plain install)."""
    return [name for name in HOT_MODULES if _is_extension(importlib.import_module(name).__file__)]


def _is_extension(path: str | None) -> bool:
    return path is not None and not path.endswith((".py", ".pyc"))
