"""The hot path compiled with mypyc (``AILB_COMPILE=1``): built from these sources, imported as C extensions, and
held to the same tests as the Python it is made from, including the gateway served over real sockets to the
official SDKs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ailb.compiled import HOT_MODULES, compile_copy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).parents[2]
# The tests of what the compiled modules do: the stream reader and scrubbing, redaction, the server protocol and
# its exchanges, the start-up report that names the build, and whole gateways answering the SDKs over sockets.
SUITES = [
    "tests/unit/providers/test_relay_reads.py",
    "tests/unit/providers/test_openai_translate.py",
    "tests/unit/providers/test_scrub.py",
    "tests/unit/core/test_redaction.py",
    "tests/unit/core/test_stream_writes.py",
    "tests/unit/core/test_client_watch.py",
    "tests/unit/core/test_startup.py",
    "tests/unit/server/test_http_protocol.py",
    "tests/integration/test_gateway_sdk.py",
    "tests/integration/test_key_leaks.py",
]


@pytest.fixture(scope="module")
def compiled_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_copy(tmp_path_factory.mktemp("compiled"))


def _run(tree: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "AILB_EXPECT_COMPILED": "1"}
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_every_hot_module_imports_as_a_c_extension(compiled_tree: Path) -> None:
    done = _run(compiled_tree, "-c", "from ailb.compiled import compiled_modules; print(','.join(compiled_modules()))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(",") == list(HOT_MODULES)
    for name in HOT_MODULES:
        package = compiled_tree.joinpath(*name.split(".")).parent
        assert list(package.glob(name.rsplit(".", 1)[1] + ".*.so")), name


def test_the_compiled_hot_path_passes_the_tests_of_the_python_one(compiled_tree: Path) -> None:
    done = _run(compiled_tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SUITES)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout.splitlines()[-1]


def _project_copy(tmp_path: Path) -> Path:
    """What a build reads of the project, copied, so that a build leaves nothing in the checkout."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        (project / name).write_bytes((ROOT / name).read_bytes())
    for folder in ("src", "scripts/build"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return project


def _pip(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AILB_COMPILE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([sys.executable, "-m", "pip", *argv], env=env, capture_output=True, text=True, check=False)


def test_an_ailb_compile_install_builds_the_hot_path_as_c_extensions(tmp_path: Path) -> None:
    """``AILB_COMPILE=1 pip install .`` as a user runs it: the build backend fetches mypyc into its isolated build
    environment."""
    wheels = tmp_path / "wheels"
    done = _pip("wheel", "--no-deps", "-q", "-w", str(wheels), str(_project_copy(tmp_path)))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (wheel,) = wheels.glob("ailb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in HOT_MODULES:
        stem = module.replace(".", "/")
        assert any(n.startswith(stem + ".cpython-") and n.endswith(".so") for n in names), module
        assert stem + ".py" in names  # the sources stay beside their extensions
    assert any("/" not in n and "__mypyc." in n and n.endswith(".so") for n in names)  # mypyc's shared runtime


def test_an_editable_install_refuses_to_compile(tmp_path: Path) -> None:
    """Extensions beside the sources would shadow every later edit of them."""
    project = _project_copy(tmp_path)
    done = _pip("install", "--no-deps", "--dry-run", "-e", str(project))
    assert done.returncode != 0
    assert "not an editable one" in done.stdout + done.stderr
    assert not list(project.rglob("*.so"))
