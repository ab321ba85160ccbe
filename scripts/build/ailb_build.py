"""setuptools' build backend, deciding whether a wheel compiles the hot path (see setup.py).

``AILB_COMPILE`` chooses: ``auto`` (the default) compiles a regular install when a C compiler that finds Python's
headers is present, and builds plain Python otherwise; ``1`` compiles or fails; ``0`` never compiles. An editable
install is plain Python (``1`` is refused there). When compiling, the build asks for mypy (which ships mypyc) in its
build environment, so users need no extra step.
"""

import importlib.util
import os
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403 (the backend's hooks, passed through)

COMPILER = "mypy>=1.11"
MODES = ("auto", "1", "0")
COMPILING = "AILB_BUILD_COMPILING"  # what setup.py reads: set by build_wheel alone, once the choice is made


def compile_mode() -> str:
    mode = os.environ.get("AILB_COMPILE", "").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"AILB_COMPILE must be auto, 1 or 0, not {mode!r}")
    return mode


def c_compiler_works() -> bool:
    """Whether the compiler a build would use (``CC`` or Python's own) compiles a file including ``Python.h``."""
    from distutils.ccompiler import new_compiler
    from distutils.errors import CCompilerError, DistutilsError
    from distutils.sysconfig import customize_compiler

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "probe.c")
        source.write_text("#include <Python.h>\nint ailb_probe(void) { return Py_IsInitialized(); }\n")
        compiler = new_compiler()
        customize_compiler(compiler)  # type: ignore[no-untyped-call]
        try:
            compiler.compile([str(source)], output_dir=folder, include_dirs=[sysconfig.get_paths()["include"]])
        except (CCompilerError, DistutilsError, OSError):
            return False
    return True


def compiling(*, needs_mypyc: bool) -> bool:
    """Whether this wheel compiles the hot path. ``needs_mypyc``: mypyc must be importable already (the build
    itself, as opposed to the question of what to install for it)."""
    mode = compile_mode()
    if mode != "auto":
        return mode == "1"
    if not c_compiler_works():
        _say("no working C compiler with Python's headers: the hot path stays plain Python (AILB_COMPILE=auto)")
        return False
    if needs_mypyc and importlib.util.find_spec("mypyc") is None:
        _say("mypyc is not in the build environment: the hot path stays plain Python (AILB_COMPILE=auto)")
        return False
    return True


def _say(message: str) -> None:
    print(f"ailb build: {message}", file=sys.stderr, flush=True)


@contextmanager
def _setup_compiling(on: bool) -> Iterator[None]:
    os.environ[COMPILING] = "1" if on else "0"
    try:
        yield
    finally:
        del os.environ[COMPILING]


def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    wanted = [COMPILER] if compiling(needs_mypyc=False) else []
    return build_meta.get_requires_for_build_wheel(config_settings) + wanted


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):  # type: ignore[no-untyped-def]
    on = compiling(needs_mypyc=True)
    with _setup_compiling(on):
        try:
            return build_meta.build_wheel(wheel_directory, config_settings, metadata_directory)
        except (Exception, SystemExit):  # setuptools exits on a failed compile, having printed the compiler's error
            if on:
                _say("compiling the hot path failed (above); AILB_COMPILE=0 installs it as plain Python")
            raise


def get_requires_for_build_editable(config_settings=None):  # type: ignore[no-untyped-def]
    if compile_mode() == "1":
        # The extensions would sit beside the sources in src/ and shadow every later edit of them.
        raise RuntimeError("AILB_COMPILE=1 compiles a regular install (pip install .), not an editable one (-e)")
    return build_meta.get_requires_for_build_editable(config_settings)
