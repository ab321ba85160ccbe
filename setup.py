"""AILB's build: plain Python by default; with ``AILB_COMPILE=1`` the hot-path modules listed in
``src/ailb/compiled.py`` become C extensions (mypyc), the rest stays Python. Everything else is in pyproject.toml."""

import ast
import os
from pathlib import Path

from setuptools import setup


def hot_modules() -> list[str]:
    """``HOT_MODULES`` read from the source, without importing ailb (its dependencies are not in the build)."""
    tree = ast.parse(Path("src/ailb/compiled.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "HOT_MODULES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("src/ailb/compiled.py names no HOT_MODULES")


def ext_modules() -> list[object]:
    if os.environ.get("AILB_COMPILE", "0") != "1" or os.environ.get("AILB_BUILD_ASKING_REQUIREMENTS") == "1":
        return []
    from mypyc.build import mypycify

    return list(mypycify([str(Path("src", *name.split(".")).with_suffix(".py")) for name in hot_modules()]))


setup(ext_modules=ext_modules())
