"""The two ways to run a local model: ONNX Runtime (default) and sentence-transformers on PyTorch (an extra).

Both turn a batch of texts into unit-length mean-pooled vectors, the sentence-transformers recipe of
all-MiniLM-L6-v2. Loaded models are shared by every embedder of the process: inference is read-only.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from ailb.embeddings.models import TORCH_EXTRA_HINT, ModelSpec

log = logging.getLogger("ailb.embeddings")

Vectors = npt.NDArray[np.float32]
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


class Encoder(Protocol):
    dimensions: int
    max_tokens: int

    def encode(self, texts: list[str]) -> Vectors: ...


class OnnxEncoder:
    """A BERT-style ONNX model: tokenize (truncated to ``max_tokens``, padded per batch), run, mean-pool, norm."""

    def __init__(self, spec: ModelSpec, threads: int) -> None:
        import onnxruntime

        if spec.sha256:
            _check_digest(spec.path, spec.sha256)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(spec.path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(spec.tokenizer))
        self._tokenizer.enable_truncation(spec.max_tokens)
        self._tokenizer.enable_padding()
        self.max_tokens = spec.max_tokens
        self.dimensions = spec.dimensions or int(self._session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str]) -> Vectors:
        return onnx_mean_pooled(self._session, self._inputs, self._tokenizer, texts)


def onnx_mean_pooled(session: Any, inputs: set[str], tokenizer: Tokenizer, texts: list[str]) -> Vectors:
    """``texts`` through an ONNX BERT-style ``session`` (taking the feeds named in ``inputs``): mean-pooled over the
    attention mask, unit length. ``bench.model_cost`` times the same function on sessions of its own."""
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    hidden = session.run(None, {k: v for k, v in feeds.items() if k in inputs})[0]
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


class TorchEncoder:
    """sentence-transformers on the CPU (the ``torch`` extra)."""

    def __init__(self, spec: ModelSpec, threads: int) -> None:
        for key, value in OFFLINE_ENV.items():
            os.environ.setdefault(key, value)
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise RuntimeError(f"EMBEDDING_RUNTIME=torch: {TORCH_EXTRA_HINT}") from None
        torch.set_num_threads(threads)
        self._model: Any = SentenceTransformer(str(spec.path), device="cpu", local_files_only=True)
        self.dimensions = int(self._model.get_embedding_dimension() or spec.dimensions)
        self.max_tokens = int(self._model.max_seq_length or spec.max_tokens)

    def encode(self, texts: list[str]) -> Vectors:
        vectors = self._model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


_loaded: dict[tuple[str, Path], Encoder] = {}
_loading_lock = threading.Lock()


def shared_encoder(spec: ModelSpec, threads: int) -> Encoder:
    """Load the model once per process; later embedders get the same one."""
    with _loading_lock:
        encoder = _loaded.get((spec.runtime, spec.path))
        if encoder is None:
            encoder = OnnxEncoder(spec, threads) if spec.runtime == "onnx" else TorchEncoder(spec, threads)
            encoder.encode(["warm-up"])
            # The runtimes leave many long-lived objects (torch: ~400k): without freezing them, every full
            # collection walks them again, over and over under request load. They live as long as the process.
            gc.freeze()
            _loaded[(spec.runtime, spec.path)] = encoder
            log.info("embedding model loaded (%s) from %s", spec.runtime, spec.path)
        return encoder


def _check_digest(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise RuntimeError(f"{path} is not the expected model file (sha256 {digest.hexdigest()[:16]}…)")
