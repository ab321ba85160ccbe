"""AILB's build: when the build backend (scripts/build/ailb_build.py, which reads ``AILB_COMPILE``) compiles a
wheel, the hot-path modules listed in ``src/ailb/compiled.py`` become C extensions (mypyc) and the rest stays
Python; otherwise all of it is Python. Everything else is in pyproject.toml."""

import ast
import os
from pathlib import Path

from setuptools import setup


def compiled_py(name: str) -> list[str]:
    """The tuple ``name`` in src/ailb/compiled.py, read from the source without importing ailb (its dependencies are
    not in the build)."""
    tree = ast.parse(Path("src/ailb/compiled.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError(f"src/ailb/compiled.py names no {name}")


def ext_modules() -> list[object]:
    if os.environ.get("AILB_BUILD_COMPILING") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as missing:
        raise RuntimeError("compiling the hot path needs mypy (it ships mypyc) in the build environment") from missing

    paths = [str(Path("src", *name.split(".")).with_suffix(".py")) for name in compiled_py("HOT_MODULES")]
    return list(mypycify([*compiled_py("MYPYC_FLAGS"), *paths]))


setup(ext_modules=ext_modules())
