"""Loopback ports for the servers tests start, and for addresses where nothing listens."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port that was free a moment ago: bound, then released at once, so nothing listens there (a
    connection to it is refused) until a test starts a server on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
