"""The /v1/rag API of a real gateway (real sockets, real model, real ChromaDB), admin-protected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.threaded import ThreadedServer
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.rag_support import ADMIN_TOKEN, CORPUS, admin_client, openai_upstream, rag_env
from tests.unit.rag.pdf_writer import make_pdf

pytestmark = pytest.mark.slow
LIMIT = 200_000


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadedServer[OpenAIFake]]:
    with openai_upstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: ThreadedServer[OpenAIFake], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp("rag-http")
    env = rag_env(upstream, workdir / "rag", AILB_ADMIN_TOKEN=ADMIN_TOKEN, MAX_REQUEST_BYTES=str(LIMIT))
    with RunningGateway(env, workdir=workdir) as running:
        yield running


@pytest.fixture
def api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gateway) as client:
        yield client
        for collection in client.get("/collections").json()["data"]:
            client.delete(f"/collections/{collection['name']}")


def error(response: httpx.Response) -> tuple[int, str | None, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["param"]


def test_the_admin_token_is_required(gateway: RunningGateway) -> None:
    with admin_client(gateway, token=None) as anonymous:
        assert anonymous.get("/collections").status_code == 401
    with admin_client(gateway, token="wrong-token") as impostor:
        assert impostor.post("/collections", json={"name": "x-docs"}).status_code == 403


def test_collections_are_created_listed_described_and_deleted(api: httpx.Client) -> None:
    created = api.post("/collections", json={"name": "company_docs", "description": "Policies"})
    assert created.status_code == 201
    assert created.json()["name"] == "company_docs" and created.json()["chunks"] == 0
    assert error(api.post("/collections", json={"name": "company_docs"})) == (409, "collection_exists", "name")
    assert [c["name"] for c in api.get("/collections").json()["data"]] == ["company_docs"]
    assert api.get("/collections/company_docs").json()["description"] == "Policies"
    assert api.delete("/collections/company_docs").json() == {"name": "company_docs", "deleted": True}
    assert error(api.get("/collections/company_docs")) == (404, "collection_not_found", "rag_collection")
    assert error(api.delete("/collections/company_docs"))[0] == 404


def test_bad_bodies_and_names_are_400s(api: httpx.Client) -> None:
    assert error(api.post("/collections", json={"name": "no spaces allowed"}))[:2] == (400, "invalid_collection_name")
    assert error(api.post("/collections", json={"name": "ok-name", "extra": 1}))[0] == 400
    assert error(api.post("/collections", content=b"{not json", headers={"content-type": "application/json"}))[:2] == (
        400,
        "invalid_json",
    )
    api.post("/collections", json={"name": "kb1"})
    assert error(api.post("/collections/kb1/documents", json={"documents": []}))[0] == 400
    bad_meta = {"documents": [{"text": "x", "metadata": {"nested": {"a": 1}}}]}
    assert error(api.post("/collections/kb1/documents", json=bad_meta))[2] == "documents[0].metadata.nested"
    assert error(api.post("/collections/kb1/query", json={"query": "x", "top_k": 0}))[:2] == (400, "invalid_value")


def test_documents_for_a_missing_collection_are_404_and_create_nothing(api: httpx.Client) -> None:
    response = api.post("/collections/ghost/documents", json={"documents": [{"text": "hello"}]})
    assert error(response) == (404, "collection_not_found", "rag_collection")
    assert error(api.post("/collections/ghost/query", json={"query": "hello"}))[0] == 404
    assert api.get("/collections").json()["data"] == []


def test_json_documents_are_chunked_and_reingesting_replaces_them(api: httpx.Client) -> None:
    api.post("/collections", json={"name": "kbase"})
    text = (CORPUS / "expense-policy.md").read_text()
    document = {"id": "expenses", "text": text, "metadata": {"title": "Expenses", "team": "finance", "year": 2024}}
    first = api.post("/collections/kbase/documents", json={"documents": [document]}).json()
    assert first["documents"][0]["id"] == "expenses" and first["chunks"] >= 2
    again = api.post("/collections/kbase/documents", json={"documents": [document]}).json()
    assert again["chunks"] == first["chunks"]
    assert api.get("/collections/kbase").json()["chunks"] == first["chunks"]
    hits = api.post("/collections/kbase/query", json={"query": "mileage rate for my own car", "top_k": 2}).json()
    assert len(hits["data"]) == 2
    best = hits["data"][0]
    assert best["document_id"] == "expenses" and best["title"] == "Expenses"
    assert "0.58 dollars per mile" in best["text"]
    assert best["metadata"] == {"team": "finance", "year": 2024}
    assert 0 < best["score"] <= 1 and best["score"] >= hits["data"][1]["score"]


def test_documents_without_an_id_get_one_from_their_text(api: httpx.Client) -> None:
    api.post("/collections", json={"name": "kbase"})
    body = {"documents": [{"text": "The cafeteria serves lunch from 11:30 to 14:00."}]}
    first = api.post("/collections/kbase/documents", json=body).json()["documents"][0]["id"]
    second = api.post("/collections/kbase/documents", json=body).json()["documents"][0]["id"]
    assert first == second
    assert api.get("/collections/kbase").json()["chunks"] == 1


def test_uploaded_markdown_html_text_and_pdf_files_are_ingested(api: httpx.Client, tmp_path: Path) -> None:
    api.post("/collections", json={"name": "uploads"})
    pdf = make_pdf(["Parking Policy\n\nThe parking garage opens at 6:30 and has 40 spaces for bicycles."],
                   title="Parking Policy")  # fmt: skip
    files = [
        ("file", ("remote-work.html", (CORPUS / "remote-work.html").read_bytes(), "text/html")),
        ("file", ("onboarding.txt", (CORPUS / "onboarding.txt").read_bytes(), "text/plain")),
        ("file", ("security-policy.md", (CORPUS / "security-policy.md").read_bytes(), "text/markdown")),
        ("file", ("parking.pdf", pdf, "application/pdf")),
    ]
    result = api.post("/collections/uploads/documents", files=files).json()
    assert [d["id"] for d in result["documents"]] == ["remote-work.html", "onboarding.txt", "security-policy.md",
                                                      "parking.pdf"]  # fmt: skip
    hit = api.post("/collections/uploads/query", json={"query": "bicycle parking spaces", "top_k": 1}).json()["data"][0]
    assert (hit["document_id"], hit["title"], hit["source"]) == ("parking.pdf", "Parking Policy", "parking.pdf")
    question = {"query": "What are the core hours when everyone must be reachable?", "top_k": 1}
    hit = api.post("/collections/uploads/query", json=question).json()["data"][0]
    assert hit["title"] == "Remote and Hybrid Work Policy"
    assert "window.analytics" not in hit["text"] and "Intranet home" not in hit["text"]


def test_an_upload_can_name_its_document(api: httpx.Client) -> None:
    api.post("/collections", json={"name": "uploads"})
    files = {"file": ("v1.md", b"# Cafeteria\n\nLunch is served from noon.", "text/markdown")}
    result = api.post("/collections/uploads/documents", files=files, data={"id": "handbook/cafeteria"}).json()
    assert result["documents"] == [{"id": "handbook/cafeteria", "chunks": 1}]
    assert api.delete("/collections/uploads/documents/handbook/cafeteria").json()["chunks"] == 1


def test_unreadable_unsupported_and_oversized_uploads_are_refused(api: httpx.Client) -> None:
    api.post("/collections", json={"name": "uploads"})
    docx = {"file": ("notes.docx", b"PK\x03\x04", "application/octet-stream")}
    assert error(api.post("/collections/uploads/documents", files=docx))[:2] == (415, "unsupported_file_type")
    broken = {"file": ("broken.pdf", b"%PDF-1.4 garbage", "application/pdf")}
    assert error(api.post("/collections/uploads/documents", files=broken))[:2] == (400, "unreadable_document")
    huge = {"file": ("huge.txt", b"word " * (LIMIT // 4), "text/plain")}
    assert api.post("/collections/uploads/documents", files=huge).status_code == 413
    no_file = {"attachment": ("notes.txt", b"text", "text/plain")}
    assert error(api.post("/collections/uploads/documents", files=no_file))[:2] == (400, "missing_file")
    assert api.post("/collections/uploads/documents", data={"id": "x"}).status_code == 415  # a form, not JSON
    assert api.get("/collections/uploads").json()["chunks"] == 0


def test_documents_are_deleted_by_id(api: httpx.Client) -> None:
    api.post("/collections", json={"name": "kbase"})
    docs = {"documents": [{"id": "a", "text": "Alpha text."}, {"id": "b", "text": "Beta text."}]}
    api.post("/collections/kbase/documents", json=docs)
    assert api.delete("/collections/kbase/documents/a").json() == {"id": "a", "collection": "kbase", "deleted": True,
                                                               "chunks": 1}  # fmt: skip
    assert error(api.delete("/collections/kbase/documents/a")) == (404, "document_not_found", "id")
    assert api.get("/collections/kbase").json()["chunks"] == 1


def test_rag_routes_answer_404_when_rag_is_disabled(
    run_gateway: GatewayFactory, upstream: ThreadedServer[OpenAIFake], tmp_path: Path
) -> None:
    gateway = run_gateway(rag_env(upstream, tmp_path / "rag", ENABLE_RAG="false"))
    with admin_client(gateway, token=None) as client:
        assert error(client.get("/collections"))[:2] == (404, "rag_disabled")
