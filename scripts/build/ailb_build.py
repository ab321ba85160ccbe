"""setuptools' build backend, asking for mypy (which ships mypyc) in the build environment when ``AILB_COMPILE=1``
(see setup.py), and refusing to compile an editable install."""

import os
from collections.abc import Callable

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403 (the backend's hooks, passed through)

COMPILER = "mypy>=1.11"
ASKING = "AILB_BUILD_ASKING_REQUIREMENTS"  # setup.py runs to list the requirements too: mypyc is not there yet


def _compiling() -> bool:
    return os.environ.get("AILB_COMPILE", "0") == "1"


def _asking(ask: Callable[[object], list[str]], config_settings: object) -> list[str]:
    os.environ[ASKING] = "1"
    try:
        return ask(config_settings)
    finally:
        del os.environ[ASKING]


def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    return _asking(build_meta.get_requires_for_build_wheel, config_settings) + ([COMPILER] if _compiling() else [])


def get_requires_for_build_editable(config_settings=None):  # type: ignore[no-untyped-def]
    if _compiling():
        # The extensions would sit beside the sources in src/ and shadow every later edit of them.
        raise RuntimeError("AILB_COMPILE=1 compiles a regular install (pip install .), not an editable one (-e)")
    return build_meta.get_requires_for_build_editable(config_settings)
