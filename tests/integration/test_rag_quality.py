"""Retrieval quality on the company-policies corpus with the real MiniLM model and a real ChromaDB.

Each question must find the document that answers it among the top 3 passages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ailb.embeddings.local import LocalEmbedder
from ailb.rag.chroma_store import ChromaVectorStore
from ailb.rag.files import collect_files, read_document
from ailb.rag.service import RagService
from ailb.settings import RagConfig
from tests.integration.rag_questions import CORPUS_QUESTIONS

CORPUS = Path(__file__).parents[2] / "examples" / "company-policies"
pytestmark = pytest.mark.slow
module_loop = pytest.mark.asyncio(loop_scope="module")  # the model and store are shared by the module


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def policies(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RagService]:
    embedder = LocalEmbedder()
    await embedder.start()
    store = ChromaVectorStore(path=str(tmp_path_factory.mktemp("rag")))
    rag = RagService(RagConfig(enabled=True), store, embedder)
    await rag.start()
    await rag.create_collection("company_docs", "Brightline company policies")
    documents = [read_document(source) for source in collect_files([str(CORPUS)])]
    await rag.ingest("company_docs", documents)
    yield rag
    await rag.aclose()
    await embedder.aclose()


def test_there_are_enough_questions_for_every_document() -> None:
    answered_by = {doc for _, doc in CORPUS_QUESTIONS}
    assert len(CORPUS_QUESTIONS) >= 20
    assert answered_by == {source.document_id for source in collect_files([str(CORPUS)])}


@module_loop
async def test_every_corpus_file_was_ingested(policies: RagService) -> None:
    info = await policies.get_collection("company_docs")
    assert info.chunks >= 9
    assert info.embedder == "local:all-MiniLM-L6-v2"


@module_loop
@pytest.mark.parametrize(("question", "document"), CORPUS_QUESTIONS, ids=[d for _, d in CORPUS_QUESTIONS])
async def test_the_answering_document_is_in_the_top_3(policies: RagService, question: str, document: str) -> None:
    passages = await policies.search("company_docs", question, 3)
    assert document in [p.document_id for p in passages], [(p.document_id, round(p.score, 3)) for p in passages]


@module_loop
async def test_chat_retrieval_cites_the_answering_document_first(policies: RagService) -> None:
    messages = [{"role": "user", "content": "How much is the per diem for meals on international trips?"}]
    retrieval = await policies.retrieve(("company_docs",), messages, 3)
    assert retrieval.sources[0] == "expense-policy.md"
    assert retrieval.message is not None
    assert "90 dollars for international trips" in retrieval.message["content"]


@module_loop
async def test_a_short_follow_up_retrieves_with_the_previous_question(policies: RagService) -> None:
    messages = [
        {"role": "user", "content": "How many weeks of parental leave do primary caregivers get?"},
        {"role": "assistant", "content": "Sixteen weeks."},
        {"role": "user", "content": "And secondary ones?"},
    ]
    retrieval = await policies.retrieve(("company_docs",), messages, 3)
    assert retrieval.sources[0] == "benefits.html"


@module_loop
async def test_an_unrelated_question_gets_no_context(policies: RagService) -> None:
    messages = [{"role": "user", "content": "Explain the rules of cricket and how a googly is bowled."}]
    retrieval = await policies.retrieve(("company_docs",), messages, 3)
    assert retrieval.message is None
