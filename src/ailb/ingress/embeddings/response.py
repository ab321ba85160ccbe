"""Vectors as the OpenAI embeddings answer: floats, or base64 of little-endian float32 (``encoding_format``)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ailb.contract import EmbeddingResult


def embedding_list(result: EmbeddingResult, model: str, as_base64: bool) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(vector) if as_base64 else vector}
        for index, vector in enumerate(result.vectors)
    ]
    tokens = result.prompt_tokens
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encoded(vector: list[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
