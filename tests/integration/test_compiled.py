"""The hot path compiled with mypyc (what ``pip install .`` builds where a C compiler is): the wheel pip builds from
these sources, unpacked, imported as C extensions and held to the same tests as the Python it is made from,
including the gateway served over real sockets to the official SDKs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ailb.compiled import HOT_MODULES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
ROOT = Path(__file__).parents[2]
# Every unit test (each compiled module's own, and those of the Python around them), and whole gateways over
# sockets: the SDKs, failover and retries, the chat features, the request limits, the metrics and the key leaks.
SUITES = [
    "tests/unit",
    "tests/integration/test_gateway_sdk.py",
    "tests/integration/test_routing_failover.py",
    "tests/integration/test_chat_features.py",
    "tests/integration/test_request_hardening.py",
    "tests/integration/test_metrics_prometheus.py",
    "tests/integration/test_key_leaks.py",
]


@pytest.fixture(scope="module")
def default_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip install .`` builds here (``AILB_COMPILE`` unset: auto), made once for the tests below."""
    done, wheel = _wheel(tmp_path_factory.mktemp("default"))
    assert done.returncode == 0 and wheel is not None, done.stdout[-4000:] + done.stderr[-4000:]
    return wheel


@pytest.fixture(scope="module")
def compiled_tree(default_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That wheel unpacked: what an install puts in site-packages, run with ``PYTHONPATH`` pointing at it."""
    tree = tmp_path_factory.mktemp("compiled")
    zipfile.ZipFile(default_wheel).extractall(tree)
    return tree


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


def _pip(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """pip as a user runs it, with ``env`` (``AILB_COMPILE`` unset unless given there)."""
    inherited = {name: value for name, value in os.environ.items() if name != "AILB_COMPILE"}
    return subprocess.run(
        [sys.executable, "-m", "pip", *argv], env={**inherited, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def _wheel(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path | None]:
    """``pip wheel`` of a copy of the project, with build isolation; the wheel it made, if any."""
    wheels = tmp_path / "wheels"
    done = _pip("wheel", "--no-deps", "-q", "-w", str(wheels), str(_project_copy(tmp_path)), **env)
    return done, next(wheels.glob("ailb-*.whl"), None)


def test_a_default_install_compiles_the_hot_path_where_a_c_compiler_is(default_wheel: Path) -> None:
    """``pip install .`` as a user runs it (``AILB_COMPILE`` unset: auto): the build backend finds the C compiler and
    fetches mypyc into its isolated build environment."""
    names = zipfile.ZipFile(default_wheel).namelist()
    for module in HOT_MODULES:
        stem = module.replace(".", "/")
        assert any(n.startswith(stem + ".cpython-") and n.endswith(".so") for n in names), module
        assert stem + ".py" in names  # the sources stay beside their extensions
    assert any("/" not in n and "__mypyc." in n and n.endswith(".so") for n in names)  # mypyc's shared runtime


def test_without_a_working_c_compiler_a_default_install_is_plain_python(tmp_path: Path) -> None:
    done, wheel = _wheel(tmp_path, CC="false")
    assert done.returncode == 0 and wheel is not None, done.stdout[-4000:] + done.stderr[-4000:]
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ailb/http/protocol.py" in names
    assert not [n for n in names if n.endswith(".so")]


def test_ailb_compile_1_fails_without_a_c_compiler_and_says_how_to_install_plain_python(tmp_path: Path) -> None:
    done, wheel = _wheel(tmp_path, CC="false", AILB_COMPILE="1")
    assert done.returncode != 0
    assert wheel is None
    assert "AILB_COMPILE=0 installs it as plain Python" in done.stdout + done.stderr


def test_an_editable_install_refuses_to_compile(tmp_path: Path) -> None:
    """Extensions beside the sources would shadow every later edit of them."""
    project = _project_copy(tmp_path)
    done = _pip("install", "--no-deps", "--dry-run", "-e", str(project), AILB_COMPILE="1")
    assert done.returncode != 0
    assert "not an editable one" in done.stdout + done.stderr
    assert not list(project.rglob("*.so"))
