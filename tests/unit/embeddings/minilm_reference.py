"""Reference vectors of the packaged all-MiniLM-L6-v2 computed by sentence-transformers on PyTorch.

The ONNX runtime (the default) is checked against them without PyTorch installed. Regenerate, where the
``torch`` extra is installed, with ``python -m tests.unit.embeddings.minilm_reference``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

REFERENCE_FILE = Path(__file__).parents[2] / "data" / "minilm_reference.json"
TEXTS = (
    "My name is Alice",
    "What is my name?",
    "How many vacation days can I carry over?",
    "You may carry over at most 5 unused vacation days into the next calendar year, to be used by March 31.",
    "The per diem for business travel abroad is 60 EUR per day for meals.",
    "Report a lost laptop to the IT service desk within 24 hours.",
    "The quick brown fox jumps over the lazy dog.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Ünïcødé tëxt, émojis 🎉 and 中文字符",
    "x",
    " ".join(["long"] * 400),
)


async def _compute() -> list[list[float]]:
    from ailb.embeddings.local import LocalEmbedder

    embedder = LocalEmbedder(runtime="torch")
    try:
        return await embedder.embed(list(TEXTS))
    finally:
        await embedder.aclose()


def main() -> None:
    vectors = asyncio.run(_compute())
    rounded = [[round(value, 6) for value in vector] for vector in vectors]
    REFERENCE_FILE.write_text(json.dumps({"texts": list(TEXTS), "vectors": rounded}) + "\n")
    print(f"wrote {len(vectors)} vectors to {REFERENCE_FILE}")


if __name__ == "__main__":
    main()
