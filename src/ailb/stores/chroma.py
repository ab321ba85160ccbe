"""The one ChromaDB seam: where ChromaDB is, connecting, the folder lock, reconnecting, and its errors.

Only this folder imports chromadb. Memory and RAG bring their own operations: picklable top-level functions
``operation(connection, *args)`` that work on the collection handles a ``ChromaConnection`` hands out. A
``ChromaStore`` runs them where the client lives (``storeworker``: a spawned worker process for an embedded
folder, threads for a server) and makes them awaitable with a deadline.

- **Where.** ``ChromaTarget``: an embedded ``PersistentClient`` in a folder, or an ``HttpClient`` for a server
  (``CHROMA_HOST``/``CHROMA_PORT``); a host wins over a path.
- **Folder lock.** Embedded ChromaDB is not safe with two processes in one folder, so the connection holds an
  exclusive lock file in it while open. A server needs no lock, and no local folder is touched at all.
- **Reconnect.** A failed call drops the client (unless ChromaDB answered and refused the request); the next
  call connects again, at most once per ``reconnect_interval`` (calls in between fail at once instead of each
  waiting on a dead store).
- **Errors.** A missing collection becomes ``CollectionMissing``; any other ChromaDB failure leaves the
  worker as plain text (ChromaDB's exceptions do not always survive pickling) and ``ChromaStore.call`` raises
  it as the owner's ``StoreUnavailableError``, as it does a missed deadline or a worker that died.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from ailb.errors import AILBError
from ailb.stores.errors import CollectionMissing, StoreUnavailableError
from ailb.stores.storeworker import StoreWorker, WorkerStopped, WorkerTimeout

T = TypeVar("T")
# Every collection is created for cosine similarity: a query's score is 1 - its distance.
COSINE = {"hnsw": {"space": "cosine"}}


@dataclass(frozen=True, slots=True)
class ChromaTarget:
    """An embedded ChromaDB in ``path``, or the server at ``host``:``port`` (then ``path`` is ignored).

    ``lock_name`` is the lock file an embedded store holds in its folder.
    """

    path: str = ""
    host: str = ""
    port: int = 8000
    lock_name: str = ".ailb-store.lock"
    reconnect_interval: float = 5.0

    def __post_init__(self) -> None:
        if not (self.path or self.host):
            raise ValueError("a ChromaDB target needs a folder (path) or a server (host)")

    @property
    def embedded(self) -> bool:
        return not self.host

    @property
    def description(self) -> str:
        return f"ChromaDB in {self.path}" if self.embedded else f"ChromaDB server {self.host}:{self.port}"


def similarity(distance: Any) -> float:
    """The cosine similarity of a query result, from its distance in a collection created here."""
    return 1.0 - float(distance)


class _StoreFailure(Exception):
    """A ChromaDB call failed; the message says how. Crosses the process boundary as plain text."""


class ChromaConnection:
    """A client and its open collections, where the worker runs them; connects on first use."""

    def __init__(self, target: ChromaTarget) -> None:
        self.target = target
        self._client: Any = None
        self._handles: dict[str, Any] = {}
        self._folder_lock: IO[str] | None = None
        self._next_connect = 0.0
        self._last_failure = ""
        self._lock = threading.Lock()

    def run(self, operation: Callable[..., T], *args: Any) -> T:
        """``operation(self, *args)``, with every foreign failure translated (the one place that does)."""
        client = None
        try:
            client = self.client()
            return operation(self, *args)
        except (AILBError, CollectionMissing, _StoreFailure):
            raise
        except Exception as exc:  # chromadb raises many unrelated types (sqlite, HTTP, Rust bindings)
            if _is_not_found(exc):
                self._handles.clear()
                raise CollectionMissing(str(exc)) from None
            failure = _describe(exc)
            if not _was_refused(exc):  # the store may be gone: connect again (a refusal says it is there)
                self._disconnect(client, failure)
            raise _StoreFailure(failure) from None

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                now = time.monotonic()
                if now < self._next_connect:
                    raise _StoreFailure(f"{self._last_failure} (reconnecting shortly)")
                self._next_connect = now + self.target.reconnect_interval
                try:
                    if self.target.embedded and self._folder_lock is None:
                        self._folder_lock = _lock_folder(self.target)
                    self._client = _open_client(self.target)
                except Exception as exc:
                    self._last_failure = _describe(exc)
                    raise
            return self._client

    def collection(self, name: str) -> Any:
        """The collection ``name``; ``CollectionMissing`` unless it exists (it is never created here)."""
        handle = self._handles.get(name)
        if handle is None:
            try:
                handle = self.client().get_collection(name, embedding_function=None)
            except Exception as exc:
                if _is_not_found(exc):
                    raise CollectionMissing(name) from None
                raise
            self._handles[name] = handle
        return handle

    def create_collection(self, name: str, metadata: Mapping[str, Any]) -> Any:
        handle = self.client().create_collection(
            name, configuration=COSINE, metadata=dict(metadata), embedding_function=None
        )
        self._handles[name] = handle
        return handle

    def get_or_create_collection(self, name: str, metadata: Mapping[str, Any]) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            handle = self.client().get_or_create_collection(
                name, configuration=COSINE, metadata=dict(metadata), embedding_function=None
            )
            self._handles[name] = handle
        return handle

    def delete_collection(self, name: str) -> None:
        self._handles.pop(name, None)
        self.client().delete_collection(name)

    def list_collections(self) -> list[Any]:
        return list(self.client().list_collections())

    def close(self) -> None:
        with self._lock:
            self._release_client()
            if self._folder_lock is not None:
                self._folder_lock.close()
                self._folder_lock = None

    def _disconnect(self, failed: Any, failure: str) -> None:
        """Drop the client a failed call used (unless another call already replaced it)."""
        with self._lock:
            if failed is not None and failed is self._client:
                self._last_failure = failure
                self._release_client()

    def _release_client(self) -> None:
        client, self._client = self._client, None
        self._handles.clear()
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


def _open_client(target: ChromaTarget) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if target.embedded:
        return chromadb.PersistentClient(path=target.path, settings=settings)
    return chromadb.HttpClient(host=target.host, port=target.port, settings=settings)


def _lock_folder(target: ChromaTarget) -> IO[str]:
    """Hold an exclusive lock in the embedded folder while it is open (released on close or process exit)."""
    folder = Path(target.path)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / target.lock_name, "a")  # held open until close()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise _StoreFailure(
            "another process is using this folder; give each AILB process its own folder, "
            "or share one ChromaDB server between processes (CHROMA_HOST)"
        ) from None
    return handle


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, _StoreFailure) else f"{type(exc).__name__}: {exc}"


def _is_not_found(exc: Exception) -> bool:
    from chromadb.errors import NotFoundError

    return isinstance(exc, NotFoundError)


def _was_refused(exc: Exception) -> bool:
    """ChromaDB answered and refused the request (a bad argument, say): the connection itself is fine."""
    from chromadb.errors import ChromaError

    return isinstance(exc, ChromaError) and exc.code() < 500


def _heartbeat(connection: ChromaConnection) -> None:
    connection.client().heartbeat()


class ChromaStore:
    """ChromaDB operations, awaitable, each within a deadline, never holding up the event loop.

    Embedded ChromaDB holds the GIL through its writes (on a thread, a 64-row upsert stalled the event loop for
    about 100 ms), so by default an embedded store runs in a worker process of its own; a server client mostly
    waits on sockets, which releases the GIL, so it runs on threads. ``unavailable`` is the error class raised
    for every failure (the owner's subclass of ``StoreUnavailableError``).
    """

    def __init__(
        self,
        target: ChromaTarget,
        *,
        unavailable: type[StoreUnavailableError] = StoreUnavailableError,
        worker_process: bool | None = None,
        threads: int = 4,
        thread_name: str = "ailb-store",
        timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.unavailable = unavailable
        self.timeout = timeout
        self.isolated = target.embedded if worker_process is None else worker_process
        self._worker = StoreWorker(
            functools.partial(ChromaConnection, target), process=self.isolated, threads=threads,
            thread_name=thread_name,
        )  # fmt: skip

    @property
    def description(self) -> str:
        return self.target.description

    async def call(self, operation: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """``operation(connection, *args)`` where the client lives, within ``deadline`` (default ``timeout``)."""
        deadline = self.timeout if deadline is None else deadline
        try:
            return await self._worker.call(deadline, ChromaConnection.run, operation, *args)
        except _StoreFailure as exc:
            raise self.unavailable(f"The {self.description} failed: {exc}") from exc
        except WorkerTimeout as exc:
            # ChromaDB's HTTP client waits forever on a server that does not answer: we do not.
            raise self.unavailable(f"The {self.description} did not answer within {deadline:g} s.") from exc
        except WorkerStopped as exc:
            raise self.unavailable(f"The worker process of the {self.description} stopped; restarting it.") from exc

    async def ping(self, deadline: float | None = None) -> None:
        """Connect (if not connected) and ask ChromaDB whether it answers."""
        await self.call(_heartbeat, deadline=deadline)

    async def aclose(self) -> None:
        await self._worker.aclose()
