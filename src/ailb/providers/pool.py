"""The keep-alive connections to one upstream origin: the idle ones, the warmest reused first, and new ones.

A connection goes back to its pool only when its answer was read whole and both sides keep it alive; one whose
reader had the whole answer but not yet the body's last bytes waits briefly for them (``Connection.finish_unread``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from ailb.providers.http1 import Connection, Origin

KEEP_ALIVE_SECONDS = 30.0
_TLS_CONTEXT: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = ssl.create_default_context()
    return _TLS_CONTEXT


class ConnectionPool:
    """Idle keep-alive connections to one origin, the warmest reused first."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self._idle: deque[Connection] = deque()
        self._closed = False

    def take_idle(self) -> Connection | None:
        """The warmest idle connection still open and fresh, or None."""
        idle = self._idle
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEP_ALIVE_SECONDS:
                return conn
            conn.close()
        return None

    async def connect(self) -> Connection:
        """A new connection (the caller bounds the time it may take)."""
        loop = asyncio.get_running_loop()
        origin = self.origin
        tls = _tls_context() if origin.tls else None
        _, conn = await loop.create_connection(
            lambda: Connection(loop),
            origin.host,
            origin.port,
            ssl=tls,
            server_hostname=origin.host if tls else None,
        )
        return conn

    def release(self, conn: Connection, answered: bool = False) -> None:
        """Keep ``conn`` for the next request if its answer was read whole, else close it. ``answered``: the reader
        had all of the answer it wanted, though maybe not the body's last bytes: the connection is kept once they
        come, if they come soon (``Connection.finish_unread``)."""
        if answered and not conn.complete and conn.keeps_alive() and not self._closed:
            conn.finish_unread(self.release)
            return
        if self._closed or not (conn.complete and conn.reusable) or conn.closed:
            conn.close()
            return
        now = asyncio.get_running_loop().time()
        conn.idle_since = now
        idle = self._idle
        idle.append(conn)
        # The coldest connections sit at the left, where taking never reaches while traffic is steady: close the
        # ones that outlived the keep-alive time (or whose upstream closed them) here, a few at a time.
        while idle[0].closed or now - idle[0].idle_since >= KEEP_ALIVE_SECONDS:
            idle.popleft().close()

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
