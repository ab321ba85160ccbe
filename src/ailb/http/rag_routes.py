"""Knowledge-base administration: ``/v1/rag/collections`` and their documents.

Admin-protected when ``AILB_ADMIN_TOKEN`` is set; otherwise a client key is enough, and a key limited to some
collections sees and touches only those.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
import orjson
from fastapi import APIRouter
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from ailb.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from ailb.http.auth import require_admin, tenant_of
from ailb.http.parsing import parse_json_object, read_body
from ailb.http.ports import HttpRuntime, runtime_of
from ailb.ingress.validation import convert
from ailb.rag.models import DocumentInput, content_id, document_id_for, validate_document_id, validate_metadata
from ailb.rag.parsing import parse_file
from ailb.tenancy import check_collection_access

if TYPE_CHECKING:
    from ailb.rag.service import RagService

router = APIRouter(prefix="/v1/rag", tags=["knowledge bases"])
MAX_DOCUMENTS = 1000
MAX_FILES = 100
_T = TypeVar("_T")


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CreateCollection(_Strict):
    name: str
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class DocumentIn(_Strict):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    id: str | None = None
    metadata: dict[str, Any] | None = None


class AddDocuments(_Strict):
    documents: Annotated[list[DocumentIn], msgspec.Meta(min_length=1, max_length=MAX_DOCUMENTS)]


class QueryCollection(_Strict):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=8000)]
    top_k: Annotated[int, msgspec.Meta(ge=1, le=50)] | None = None


@router.get("/collections", summary="List knowledge base collections")
async def list_collections(request: Request) -> Response:
    rag, permitted = _authorize(runtime_of(request), request)
    infos = await rag.list_collections()
    data = [info.as_dict() for info in infos if permitted is None or info.name in permitted]
    return _json({"object": "list", "data": data})


@router.post("/collections", summary="Create a collection", status_code=201)
async def create_collection(request: Request) -> Response:
    runtime = runtime_of(request)
    rag, _ = _authorize(runtime, request)
    body = await _decode(runtime, request, CreateCollection)
    _check_allowed(runtime, request, body.name)
    info = await rag.create_collection(body.name, body.description)
    return _json(info.as_dict(), status=201)


@router.get("/collections/{name}", summary="Describe a collection")
async def get_collection(request: Request, name: str) -> Response:
    rag = _authorize_collection(runtime_of(request), request, name)
    return _json((await rag.get_collection(name)).as_dict())


@router.delete("/collections/{name}", summary="Delete a collection and all its documents")
async def delete_collection(request: Request, name: str) -> Response:
    rag = _authorize_collection(runtime_of(request), request, name)
    await rag.delete_collection(name)
    return _json({"name": name, "deleted": True})


@router.post(
    "/collections/{name}/documents",
    summary="Add or replace documents: a JSON list of texts, or a multipart upload of .txt/.md/.html/.pdf files",
)
async def add_documents(request: Request, name: str) -> Response:
    runtime = runtime_of(request)
    rag = _authorize_collection(runtime, request, name)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "multipart/form-data":
        documents = await _uploaded_documents(request, runtime.settings.max_request_bytes)
    else:
        body = await _decode(runtime, request, AddDocuments)
        documents = [_document(index, doc) for index, doc in enumerate(body.documents)]
    result = await rag.ingest(name, documents)
    return _json(result.as_dict())


@router.delete("/collections/{name}/documents/{document_id:path}", summary="Delete one document's chunks")
async def delete_document(request: Request, name: str, document_id: str) -> Response:
    rag = _authorize_collection(runtime_of(request), request, name)
    removed = await rag.delete_document(name, document_id)
    if not removed:
        raise NotFoundError(
            f"The collection {name!r} has no document {document_id!r}.", param="id", code="document_not_found"
        )
    return _json({"id": document_id, "collection": name, "deleted": True, "chunks": removed})


@router.post("/collections/{name}/query", summary="Search a collection; returns the scored passages")
async def query_collection(request: Request, name: str) -> Response:
    runtime = runtime_of(request)
    rag = _authorize_collection(runtime, request, name)
    body = await _decode(runtime, request, QueryCollection)
    top_k = body.top_k or rag.config.default_top_k
    passages = await rag.search(name, body.query, top_k)
    return _json({"object": "list", "collection": name, "query": body.query,
                  "data": [p.as_dict() for p in passages]})  # fmt: skip


# --- helpers ------------------------------------------------------------------------------------------------
def _authorize(runtime: HttpRuntime, request: Request) -> tuple[RagService, frozenset[str] | None]:
    """The RAG service and, for a client key limited to some collections, the names it may use."""
    require_admin(runtime, request)
    rag = runtime.rag
    if rag is None:
        raise NotFoundError(
            "Knowledge bases are disabled on this gateway (ENABLE_RAG=false).", param=None, code="rag_disabled"
        )
    if runtime.settings.admin_token:
        return rag, None
    return rag, runtime.keys.collections_of(tenant_of(runtime, request))


def _authorize_collection(runtime: HttpRuntime, request: Request, name: str) -> RagService:
    rag, _ = _authorize(runtime, request)
    _check_allowed(runtime, request, name)
    return rag


def _check_allowed(runtime: HttpRuntime, request: Request, name: str) -> None:
    if not runtime.settings.admin_token:
        check_collection_access(runtime.keys.collections_of(tenant_of(runtime, request)), (name,))


async def _decode(runtime: HttpRuntime, request: Request, kind: type[_T]) -> _T:
    """The body, read and parsed like every API request's, checked against ``kind``."""
    return convert(parse_json_object(await read_body(request, runtime.settings.max_request_bytes)), kind)


def _document(index: int, doc: DocumentIn) -> DocumentInput:
    where = f"documents[{index}]"
    metadata = validate_metadata(doc.metadata, f"{where}.metadata")
    title = str(metadata.pop("title", ""))
    source = str(metadata.pop("source", ""))
    doc_id = validate_document_id(doc.id, f"{where}.id") if doc.id is not None else content_id(doc.text)
    return DocumentInput(id=doc_id, text=doc.text, source=source, title=title, metadata=metadata)


async def _uploaded_documents(request: Request, max_bytes: int) -> list[DocumentInput]:
    limited = _size_limited(request, max_bytes)
    async with limited.form(max_files=MAX_FILES, max_fields=10) as form:
        uploads = [value for value in form.getlist("file") + form.getlist("files") if isinstance(value, UploadFile)]
        if not uploads:
            raise InvalidRequestError("Upload the documents as form field 'file'.", param="file", code="missing_file")
        given_id = form.get("id")
        if given_id is not None and (not isinstance(given_id, str) or len(uploads) != 1):
            raise InvalidRequestError("Field 'id' names a single uploaded file.", param="id", code="invalid_value")
        documents = []
        for upload in uploads:
            filename = upload.filename or "upload.txt"
            parsed = await asyncio.to_thread(parse_file, filename, await upload.read())
            doc_id = validate_document_id(given_id) if isinstance(given_id, str) else document_id_for(filename)
            documents.append(DocumentInput(id=doc_id, text=parsed.text, source=filename, title=parsed.title))
        return documents


def _size_limited(request: Request, limit: int) -> Request:
    """``request`` whose body raises ``PayloadTooLargeError`` once it grows past ``limit`` bytes."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise PayloadTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
        return message

    return Request(request.scope, receive)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
