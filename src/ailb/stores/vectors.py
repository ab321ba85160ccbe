"""Vector arithmetic for the in-memory stores, with ChromaDB's cosine semantics (score = 1 - cosine distance)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of the angle between ``a`` and ``b``; 0 when either is all zeros.

    Raises ``ValueError`` when the lengths differ (ChromaDB refuses such a vector too).
    """
    if len(a) != len(b):
        raise ValueError(f"a vector of {len(b)} dimensions cannot be compared with one of {len(a)}")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0
