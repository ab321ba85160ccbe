"""The two ways the ``ailb rag`` commands reach knowledge bases.

``LocalRag`` opens the store in ``RAG_PATH`` (or ``CHROMA_HOST``) directly, with the same settings as the
server; ``RemoteRag`` goes through a running gateway's ``/v1/rag`` API with the standard library's urllib.
Both raise ``RagClientError`` with a message for the user.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ailb.errors import AILBError
from ailb.rag.files import SourceFile, read_document
from ailb.rag.models import DocumentInput

if TYPE_CHECKING:
    from ailb.embeddings.base import Embedder
    from ailb.providers.base import Provider
    from ailb.rag.service import RagService
    from ailb.settings import Settings

FileProgress = Callable[[int, int], None]  # (units done, units in total)
_T = TypeVar("_T")


class RagClientError(Exception):
    pass


@dataclass(slots=True)
class IngestSummary:
    documents: int = 0
    chunks: int = 0
    failures: list[str] = field(default_factory=list)


class RagClient(Protocol):
    def list_collections(self) -> list[dict[str, Any]]: ...
    def ensure_collection(self, name: str, description: str) -> bool: ...
    def ingest(self, name: str, files: list[SourceFile], progress: FileProgress) -> IngestSummary: ...
    def query(self, name: str, text: str, top_k: int | None) -> list[dict[str, Any]]: ...
    def delete_collection(self, name: str) -> None: ...
    def delete_document(self, name: str, document_id: str) -> int: ...
    def close(self) -> None: ...


class RemoteRag:
    def __init__(self, url: str, token: str = "", timeout: float = 300.0) -> None:
        self.base = url.rstrip("/") + "/v1/rag"
        self.token = token
        self.timeout = timeout

    def list_collections(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call("GET", "/collections")["data"]
        return data

    def ensure_collection(self, name: str, description: str) -> bool:
        try:
            self._send("GET", f"/collections/{_quote(name)}", None, {})
            return False
        except _HTTPFailure as exc:
            if exc.status != 404 or exc.code != "collection_not_found":
                raise RagClientError(exc.message) from None
        self._call("POST", "/collections", {"name": name, "description": description})
        return True

    def ingest(self, name: str, files: list[SourceFile], progress: FileProgress) -> IngestSummary:
        summary = IngestSummary()
        for done, source in enumerate(files, start=1):
            try:
                data = source.path.read_bytes()
                result = self._upload(f"/collections/{_quote(name)}/documents", source, data)
            except OSError as exc:
                summary.failures.append(f"{source.path}: {exc.strerror or exc}")
            except _HTTPFailure as exc:
                if exc.status not in (400, 413, 415):
                    raise RagClientError(exc.message) from None
                summary.failures.append(f"{source.path}: {exc.message}")
            else:
                summary.documents += 1
                summary.chunks += int(result["chunks"])
            progress(done, len(files))
        return summary

    def query(self, name: str, text: str, top_k: int | None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"query": text} if top_k is None else {"query": text, "top_k": top_k}
        data: list[dict[str, Any]] = self._call("POST", f"/collections/{_quote(name)}/query", body)["data"]
        return data

    def delete_collection(self, name: str) -> None:
        self._call("DELETE", f"/collections/{_quote(name)}")

    def delete_document(self, name: str, document_id: str) -> int:
        path = f"/collections/{_quote(name)}/documents/{urllib.parse.quote(document_id, safe='/')}"
        return int(self._call("DELETE", path)["chunks"])

    def close(self) -> None:
        return None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        try:
            return self._send(method, path, payload, headers)
        except _HTTPFailure as exc:
            raise RagClientError(exc.message) from None

    def _upload(self, path: str, source: SourceFile, data: bytes) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        filename = source.path.name.replace('"', "%22").replace("\r", "").replace("\n", "")
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="id"\r\n\r\n{source.document_id}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self._send("POST", path, b"".join(parts), headers)

    def _send(self, method: str, path: str, payload: bytes | None, headers: dict[str, str]) -> dict[str, Any]:
        if self.token:
            headers = {**headers, "Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(self.base + path, data=payload, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                result: dict[str, Any] = json.loads(response.read() or b"{}")
                return result
        except urllib.error.HTTPError as exc:
            raise _HTTPFailure.from_response(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RagClientError(f"cannot reach the gateway at {self.base}: {reason}") from None


class _HTTPFailure(Exception):
    def __init__(self, status: int, message: str, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    @classmethod
    def from_response(cls, exc: urllib.error.HTTPError) -> _HTTPFailure:
        try:
            error = json.loads(exc.read())["error"]
            return cls(exc.code, f"{error['message']} (HTTP {exc.code})", error.get("code"))
        except (ValueError, KeyError, TypeError):
            return cls(exc.code, f"the gateway answered HTTP {exc.code} {exc.reason}", None)


class LocalRag:
    """Works on the store the settings name, loading the embedding model in this process."""

    def __init__(self, settings: Settings) -> None:
        from ailb.rag.service import RagService

        self._runner = asyncio.Runner()
        self._providers = _embedding_providers(settings)
        self.embedder: Embedder = _cli_embedder(settings, self._providers)
        self.service: RagService = RagService.from_settings(settings, self.embedder)
        self._run(self.service.start())  # the model loads on first use (ingest, query), not for list/delete

    def list_collections(self) -> list[dict[str, Any]]:
        return [info.as_dict() for info in self._run(self.service.list_collections())]

    def ensure_collection(self, name: str, description: str) -> bool:
        _, created = self._run(self.service.ensure_collection(name, description))
        return created

    def ingest(self, name: str, files: list[SourceFile], progress: FileProgress) -> IngestSummary:
        summary = IngestSummary()
        documents: list[DocumentInput] = []
        for source in files:
            try:
                document = read_document(source)
            except OSError as exc:
                summary.failures.append(f"{source.path}: {exc.strerror or exc}")
                continue
            except AILBError as exc:
                summary.failures.append(f"{source.path}: {exc.message}")
                continue
            if not document.text.strip():
                summary.failures.append(f"{source.path}: no text found")
                continue
            documents.append(document)
        if documents:
            result = self._run(self.service.ingest(name, documents, progress))
            summary.documents, summary.chunks = len(result.documents), result.chunks
        return summary

    def query(self, name: str, text: str, top_k: int | None) -> list[dict[str, Any]]:
        passages = self._run(self.service.search(name, text, top_k or self.service.config.default_top_k))
        return [p.as_dict() for p in passages]

    def delete_collection(self, name: str) -> None:
        self._run(self.service.delete_collection(name))

    def delete_document(self, name: str, document_id: str) -> int:
        return self._run(self.service.delete_document(name, document_id))

    def close(self) -> None:
        try:
            self._run(self.service.aclose())
            self._run(self.embedder.aclose())
            for provider in self._providers.values():
                self._run(provider.aclose())
        finally:
            self._runner.close()

    def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        try:
            return self._runner.run(work)
        except AILBError as exc:
            raise RagClientError(exc.message) from exc


def _cli_embedder(settings: Settings, providers: dict[str, Provider]) -> Embedder:
    """The server's embedder; the local model may use every CPU here, at full priority, since no requests are
    being served."""
    if settings.embedding_backend == "local":
        from ailb.embeddings.local import LocalEmbedder

        return LocalEmbedder(
            settings.embedding_model,
            runtime=settings.embedding_runtime,
            threads=max(1, os.cpu_count() or 1),
            bulk_niceness=0,
        )
    from ailb.embeddings.factory import build_embedder

    return build_embedder(settings, providers)


def _embedding_providers(settings: Settings) -> dict[str, Provider]:
    """The deployments an embedder may call (only with ``EMBEDDING_BACKEND=provider``)."""
    if settings.embedding_backend != "provider":
        return {}
    from ailb.runtime import build_provider

    return {d.name: build_provider(d) for d in settings.deployments if d.name == settings.embedding_deployment}


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")
