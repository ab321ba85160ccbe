"""The build backend's choice of compiling the hot path (scripts/build/ailb_build.py, ``AILB_COMPILE``). The builds
themselves, with pip and build isolation, are in tests/integration/test_compiled.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BACKEND = Path(__file__).parents[3] / "scripts" / "build" / "ailb_build.py"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delenv("AILB_COMPILE", raising=False)
    monkeypatch.delenv("CC", raising=False)
    spec = importlib.util.spec_from_file_location("ailb_build_under_test", BACKEND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("value", "mode"), [("", "auto"), ("auto", "auto"), (" AUTO ", "auto"), ("1", "1"), ("0", "0")]
)
def test_ailb_compile_names_the_mode(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch, value: str, mode: str
) -> None:
    monkeypatch.setenv("AILB_COMPILE", value)
    assert backend.compile_mode() == mode


def test_an_unknown_ailb_compile_is_refused_with_the_values_it_takes(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AILB_COMPILE", "yes")
    with pytest.raises(ValueError, match="AILB_COMPILE must be auto, 1 or 0, not 'yes'"):
        backend.compiling(needs_mypyc=False)


def test_auto_compiles_with_a_working_c_compiler_and_mypyc(backend: ModuleType) -> None:
    assert backend.c_compiler_works()  # scripts/dev test installs gcc and Python's headers
    assert backend.compiling(needs_mypyc=True)


def test_auto_stays_python_when_the_compiler_fails(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CC", "false")
    assert not backend.c_compiler_works()
    assert not backend.compiling(needs_mypyc=True)
    assert "the hot path stays plain Python (AILB_COMPILE=auto)" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "compiles"), [("1", True), ("0", False)])
def test_a_set_ailb_compile_decides_without_probing(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch, value: str, compiles: bool
) -> None:
    monkeypatch.setenv("AILB_COMPILE", value)
    monkeypatch.setattr(backend, "c_compiler_works", lambda: pytest.fail("probed the compiler"))
    assert backend.compiling(needs_mypyc=True) is compiles


def test_an_editable_install_is_refused_only_when_compiling_is_required(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(backend.get_requires_for_build_editable(), list)  # auto: plain Python, no refusal
    monkeypatch.setenv("AILB_COMPILE", "1")
    with pytest.raises(RuntimeError, match="not an editable one"):
        backend.get_requires_for_build_editable()
