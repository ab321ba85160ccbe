"""RagService logic on the in-memory store, with a word-hashing stand-in for the embedding model: no ChromaDB,
no model. (The store itself is checked by the contract suite, against ChromaDB too.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from ailb.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from ailb.rag.inmemory import InMemoryVectorStore
from ailb.rag.models import CollectionInfo, DocumentInput, Passage, StoredChunk
from ailb.rag.prompt import BLOCK_CLOSE, BLOCK_OPEN
from ailb.rag.service import RagService
from ailb.rag.store import RagStoreUnavailableError
from ailb.settings import RagConfig
from ailb.stores.vectors import cosine_similarity
from ailb.tenancy import check_collection_access
from tests.unit.rag.conftest import RecordingMetrics, WordEmbedder

DOCS = [
    DocumentInput("vacation.md", "Employees receive 25 vacation days per year. Unused vacation days expire in March.",
                  title="Vacation"),
    DocumentInput("expenses.md", "Meals on business trips are covered by a per diem of 60 dollars. Receipts needed.",
                  title="Expenses"),
    DocumentInput("security.md", "Passwords need 14 characters. Report phishing emails to the security team.",
                  title="Security"),
]  # fmt: skip


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


class UnreachableStore(InMemoryVectorStore):
    """A store whose server is down: every call fails, counted."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _fail(self) -> None:
        self.calls += 1
        raise RagStoreUnavailableError("connection refused")

    async def connect(self) -> None:
        self._fail()

    async def list_collections(self) -> list[CollectionInfo]:
        self._fail()
        return []

    async def require(self, name: str) -> str:
        self._fail()
        return ""

    async def query(self, name: str, embedding: Sequence[float], top_k: int) -> list[Passage]:
        self._fail()
        return []


async def test_retrieval_injects_the_relevant_document_as_a_numbered_source(service: RagService) -> None:
    await service.create_collection("policies", "Company policies")
    await service.ingest("policies", DOCS)
    retrieval = await service.retrieve(("policies",), ask("How many vacation days per year?"), 3)
    assert retrieval.sources[0] == "vacation.md"
    assert "expenses.md" not in retrieval.sources
    assert retrieval.message is not None
    content = retrieval.message["content"]
    assert retrieval.message["role"] == "system"
    assert '<source id="1" document="vacation.md" title="Vacation">' in content
    assert content.index(BLOCK_OPEN) < content.index("25 vacation days") < content.index(BLOCK_CLOSE)


async def test_passages_under_the_relevance_threshold_are_dropped(service: RagService) -> None:
    await service.create_collection("policies")
    await service.ingest("policies", DOCS)
    retrieval = await service.retrieve(("policies",), ask("quantum chromodynamics lattice gauge"), 3)
    assert retrieval.message is None
    assert retrieval.sources == []


async def test_reingesting_a_document_replaces_its_chunks(service: RagService, store: InMemoryVectorStore) -> None:
    await service.create_collection("policies")
    long_text = "\n\n".join(f"Paragraph {n} explains vacation rule {n} in some detail for everyone." for n in range(12))
    first = await service.ingest("policies", [DocumentInput("vacation.md", long_text, title="Vacation")])
    assert first.chunks > 2
    again = await service.ingest("policies", [DocumentInput("vacation.md", long_text, title="Vacation")])
    assert again.chunks == first.chunks
    assert (await store.collection_info("policies")).chunks == first.chunks
    await service.ingest("policies", [DocumentInput("vacation.md", "Vacation is now unlimited.", title="Vacation")])
    assert (await store.collection_info("policies")).chunks == 1
    passages = await service.search("policies", "vacation rule", 10)
    assert [p.text for p in passages] == ["Vacation is now unlimited."]


async def test_several_collections_are_searched_and_merged_by_score(service: RagService) -> None:
    await service.create_collection("policies")
    await service.create_collection("handbook")
    await service.ingest("policies", DOCS)
    await service.ingest("handbook", [DocumentInput("parking.md", "The parking garage opens at 7 with 40 spaces.")])
    messages = ask("When does the parking garage open, and how many vacation days?")
    retrieval = await service.retrieve(("policies", "handbook"), messages, 2)
    assert set(retrieval.sources) == {"parking.md", "vacation.md"}
    scores = [p.score for p in retrieval.passages]
    assert scores == sorted(scores, reverse=True)
    assert {p.collection for p in retrieval.passages} == {"policies", "handbook"}


async def test_a_missing_collection_is_a_404_on_rag_collection(service: RagService) -> None:
    await service.create_collection("policies")
    with pytest.raises(NotFoundError) as caught:
        await service.retrieve(("policies", "ghost"), ask("anything at all here"), 3)
    assert (caught.value.status, caught.value.param, caught.value.code) == (
        404, "rag_collection", "collection_not_found",
    )  # fmt: skip
    assert [c.name for c in await service.list_collections()] == ["policies"]


async def test_invalid_names_are_400_before_touching_the_store(service: RagService) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await service.retrieve(("../etc",), ask("x"), 3)
    assert (caught.value.status, caught.value.param) == (400, "rag_collection")


async def test_a_limited_key_may_only_use_its_collections(service: RagService) -> None:
    await service.create_collection("policies")
    await service.create_collection("finance")
    check_collection_access(frozenset({"policies"}), ["policies"])
    check_collection_access(None, ["finance"])
    with pytest.raises(PermissionDeniedError) as caught:
        await service.retrieve(("policies", "finance"), ask("budget numbers for this year"), 3, frozenset({"policies"}))
    assert (caught.value.status, caught.value.param) == (403, "rag_collection")


async def test_a_failing_store_degrades_to_no_context_and_is_signalled(
    embedder: WordEmbedder, metrics: RecordingMetrics
) -> None:
    store = UnreachableStore()
    rag = RagService(RagConfig(enabled=True), store, embedder, metrics=metrics)
    await rag.start()
    assert rag.status() == "degraded"
    retrieval = await rag.retrieve(("policies",), ask("How many vacation days per year?"), 3)
    assert (retrieval.message, retrieval.sources) == (None, [])
    assert metrics.failures == ["list", "retrieve"]
    calls = store.calls
    again = await rag.retrieve(("policies",), ask("How many vacation days per year?"), 3)
    assert again.message is None and store.calls == calls  # requests do not wait on a store that just failed
    with pytest.raises(RagStoreUnavailableError):
        await rag.list_collections()
    await rag.aclose()


async def test_a_failing_embedder_degrades_to_no_context(service: RagService, embedder: WordEmbedder,
                                                          metrics: RecordingMetrics) -> None:  # fmt: skip
    await service.create_collection("policies")
    await service.ingest("policies", DOCS)
    embedder.failing = True
    retrieval = await service.retrieve(("policies",), ask("How many vacation days per year?"), 3)
    assert retrieval.message is None
    assert service.status() == "degraded"
    assert metrics.failures == ["retrieve"]


async def test_while_the_model_loads_requests_get_no_context_but_404s_still_apply(
    store: InMemoryVectorStore, metrics: RecordingMetrics
) -> None:
    loading = WordEmbedder(ready=False)
    rag = RagService(RagConfig(enabled=True), store, loading, metrics=metrics)
    await rag.start()
    await store.create_collection("policies", "", loading.name)
    assert rag.status() == "loading"
    assert (await rag.retrieve(("policies",), ask("vacation days per year"), 3)).message is None
    with pytest.raises(NotFoundError):
        await rag.retrieve(("ghost",), ask("vacation days per year"), 3)
    ingest = asyncio.create_task(rag.ingest("policies", DOCS[:1]))
    await asyncio.sleep(0.05)
    assert not ingest.done()
    loading.set_ready()
    assert (await ingest).chunks == 1
    assert rag.status() == "ok"
    await rag.aclose()


async def test_ingest_batches_reports_progress_and_counts_chunks(
    service: RagService, embedder: WordEmbedder, metrics: RecordingMetrics
) -> None:
    await service.create_collection("policies")
    documents = [DocumentInput(f"doc-{n}", f"Document {n} talks about topic {n}.") for n in range(10)]
    seen: list[tuple[int, int]] = []
    result = await service.ingest("policies", documents, lambda done, total: seen.append((done, total)))
    assert result.chunks == 10
    assert embedder.calls == [4, 4, 2]
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert metrics.ingested == 10
    assert result.as_dict()["documents"][0] == {"id": "doc-0", "chunks": 1}


async def test_ingest_refuses_bad_input_without_writing(service: RagService, store: InMemoryVectorStore) -> None:
    await service.create_collection("policies")
    bad_batches = [
        [DocumentInput("a", "text"), DocumentInput("a", "again")],
        [DocumentInput("has space", "text")],
        [DocumentInput("empty", "   \n\n ")],
    ]
    for documents in bad_batches:
        with pytest.raises(InvalidRequestError):
            await service.ingest("policies", documents)
    with pytest.raises(NotFoundError):
        await service.ingest("ghost", DOCS)
    assert (await store.collection_info("policies")).chunks == 0


async def test_documents_can_be_deleted_one_by_one(service: RagService) -> None:
    await service.create_collection("policies")
    await service.ingest("policies", DOCS)
    assert await service.delete_document("policies", "vacation.md") == 1
    assert await service.delete_document("policies", "vacation.md") == 0
    retrieval = await service.retrieve(("policies",), ask("How many vacation days per year?"), 3)
    assert "vacation.md" not in retrieval.sources


async def test_ensure_collection_creates_once(service: RagService) -> None:
    info, created = await service.ensure_collection("policies", "first")
    assert created and info.description == "first"
    info, created = await service.ensure_collection("policies", "second")
    assert not created and info.description == "first"
    await service.delete_collection("policies")
    with pytest.raises(NotFoundError):
        await service.get_collection("policies")


async def test_a_collection_filled_by_another_model_is_refused_for_ingest_and_skipped_in_chat(
    service: RagService, store: InMemoryVectorStore, metrics: RecordingMetrics
) -> None:
    await store.create_collection("legacy", "", "local:some-other-model")
    await service.create_collection("policies")
    await service.ingest("policies", DOCS)
    with pytest.raises(InvalidRequestError) as caught:
        await service.ingest("legacy", DOCS)
    assert (caught.value.status, caught.value.code) == (409, "embedder_mismatch")
    with pytest.raises(InvalidRequestError):
        await service.search("legacy", "vacation", 3)
    retrieval = await service.retrieve(("legacy", "policies"), ask("How many vacation days per year?"), 3)
    assert retrieval.sources[0] == "vacation.md"
    assert metrics.failures == ["retrieve"]


async def test_a_passage_scoring_exactly_the_threshold_is_kept(store: InMemoryVectorStore,
                                                                 embedder: WordEmbedder) -> None:  # fmt: skip
    await store.create_collection("leave", "", embedder.name)
    [vector] = await embedder.embed(["Unused vacation days carry over until March."])
    await store.write_chunks("leave", [StoredChunk("vacation", 0, "Unused vacation days carry over until March.",
                                                vector, "vacation.md", "", {})])  # fmt: skip
    question = "How do vacation days work for new employees?"
    score = cosine_similarity(vector, await embedder.embed_query(question))
    assert 0.2 < score < 1
    at_threshold = RagService(RagConfig(enabled=True, min_score=score), store, embedder)
    assert (await at_threshold.retrieve(("leave",), ask(question), 3)).sources == ["vacation"]
    above = RagService(RagConfig(enabled=True, min_score=score + 1e-9), store, embedder)
    assert (await above.retrieve(("leave",), ask(question), 3)).message is None
    passages = await above.search("leave", question, 3)  # administration sees every score, no threshold
    assert [p.score for p in passages] == [pytest.approx(score)]


async def test_top_k_keeps_the_best_passages_over_all_collections(service: RagService) -> None:
    await service.create_collection("policies")
    await service.create_collection("handbook")
    await service.ingest("policies", DOCS)
    await service.ingest("handbook", [DocumentInput("parking.md", "The parking garage opens at 7 with 40 spaces.")])
    messages = ask("When does the parking garage open for employees with vacation days?")
    both = await service.retrieve(("policies", "handbook"), messages, 2)
    best = await service.retrieve(("policies", "handbook"), messages, 1)
    assert len(both.passages) == 2
    assert best.passages == both.passages[:1]


async def test_a_collection_named_twice_is_searched_once(service: RagService, embedder: WordEmbedder) -> None:
    await service.create_collection("policies")
    await service.ingest("policies", DOCS)
    retrieval = await service.retrieve(("policies", "policies"), ask("How many vacation days a year?"), 5)
    assert len({p.chunk_id for p in retrieval.passages}) == len(retrieval.passages)
    assert embedder.queries == ["How many vacation days a year?"]


async def test_a_deleted_collection_is_gone_for_chat_and_administration(service: RagService) -> None:
    await service.create_collection("policies")
    await service.ingest("policies", DOCS)
    assert (await service.get_collection("policies")).chunks == 3
    await service.delete_collection("policies")
    for call in (
        service.retrieve(("policies",), ask("How many vacation days per year?"), 3),
        service.delete_document("policies", "vacation.md"),
        service.delete_collection("policies"),
        service.ingest("policies", DOCS),
    ):
        with pytest.raises(NotFoundError):
            await call
    assert await service.list_collections() == []
