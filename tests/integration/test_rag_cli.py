"""`ailb rag` on the store in RAG_PATH (no gateway), with the real model."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from ailb.cli import main as ailb
from ailb.rag.chroma_store import ChromaVectorStore
from tests.integration.rag_support import CORPUS

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def rag_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("AILB_CONFIG", "CHROMA_HOST", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAG_PATH", str(tmp_path / "rag"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "rag"


def test_ingest_list_query_and_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs / "policies")
    (docs / ".hidden.md").write_text("# Hidden\n\nNever ingested.")
    (docs / "policies" / "image.png").write_bytes(b"\x89PNG")
    assert ailb(["rag", "ingest", "company_docs", str(docs), "--description", "Company policies"]) == 0
    out, err = capsys.readouterr()
    assert "created collection company_docs" in err
    assert f"skipped {docs / 'policies' / 'image.png'}: unsupported file type" in err
    assert ".hidden.md" not in err
    assert f"knowledge-base store: embedded ChromaDB in {tmp_path / 'rag'}" in err
    assert "ingested 9 documents" in out

    assert ailb(["rag", "list", "--json"]) == 0
    [collection] = json.loads(capsys.readouterr().out)
    assert (collection["name"], collection["description"]) == ("company_docs", "Company policies")
    chunks = collection["chunks"]

    assert ailb(["rag", "query", "company_docs", "What is the mileage rate for my own car?", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] ")
    assert "policies/expense-policy.md" in out.splitlines()[0]
    assert "[3]" not in out

    assert ailb(["rag", "ingest", "company_docs", str(docs)]) == 0
    capsys.readouterr()
    assert ailb(["rag", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["chunks"] == chunks

    assert ailb(["rag", "delete", "company_docs", "--document", "policies/benefits.html"]) == 0
    assert "deleted document policies/benefits.html (2 chunks)" in capsys.readouterr().out
    assert ailb(["rag", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.split()[0] == "company_docs"
    assert "expense-policy.md" not in listing
    assert ailb(["rag", "delete", "company_docs"]) == 0
    assert ailb(["rag", "list"]) == 0
    assert capsys.readouterr().out.endswith("no collections\n")


def test_reingesting_a_folder_does_not_duplicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ailb(["rag", "ingest", "company_docs", str(CORPUS)]) == 0
    assert ailb(["rag", "ingest", "company_docs", str(CORPUS)]) == 0
    capsys.readouterr()
    assert ailb(["rag", "list", "--json"]) == 0
    [collection] = json.loads(capsys.readouterr().out)
    assert ailb(["rag", "ingest", "company_docs", str(CORPUS / "vacation-policy.md")]) == 0
    assert "ingested 1 document (3 chunks)" in capsys.readouterr().out
    assert ailb(["rag", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["chunks"] == collection["chunks"]


def test_errors_are_reported_with_a_non_zero_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ailb(["rag", "ingest", "company_docs", str(tmp_path / "missing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    assert ailb(["rag", "ingest", "company_docs", str(tmp_path / "slides.pptx")]) == 1
    assert "unsupported file type" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert ailb(["rag", "ingest", "company_docs", str(tmp_path / "empty")]) == 1
    assert ailb(["rag", "query", "ghost-kb", "anything"]) == 1
    assert "'ghost-kb' does not exist" in capsys.readouterr().err
    assert ailb(["rag", "delete", "ghost-kb"]) == 1
    assert ailb(["rag", "list"]) == 0
    assert capsys.readouterr().out == "no collections\n"
    assert ailb(["rag", "list", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach the gateway" in capsys.readouterr().err


def test_unreadable_files_are_skipped_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe cafeteria opens at noon.")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not a pdf")
    (folder / "blank.txt").write_text("   \n")
    assert ailb(["rag", "ingest", "kb-mixed", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert "ingested 1 document (1 chunk) into kb-mixed" in out
    assert "broken.pdf" in err and "blank.txt: no text found" in err


async def test_a_folder_a_gateway_serves_is_refused(rag_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serving = ChromaVectorStore(path=str(rag_path), worker_process=False)  # holds the folder, as a gateway does
    await serving.create_collection("company_docs", "", "m")
    try:
        assert await asyncio.to_thread(ailb, ["rag", "list"]) == 1
        assert "another process is using this folder" in capsys.readouterr().err
    finally:
        await serving.aclose()
    assert await asyncio.to_thread(ailb, ["rag", "list"]) == 0
    assert capsys.readouterr().out.startswith("company_docs")
