"""What mypyc compiles differently from Python, kept out of the sources of the compiled modules
(``ailb.compiled.HOT_MODULES``). tests/integration/test_compiled.py runs the test suites on the compiled tree; these
checks name the cause where a suite would only show a failure."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from ailb.compiled import HOT_MODULES


def _source(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    # the source beside a compiled module's extension too
    return ast.parse((Path(spec.origin).parent / f"{module.rsplit('.', 1)[1]}.py").read_text())


def _functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_compiled_function_binds_one_name_in_two_except_clauses() -> None:
    """mypyc gives a local one type, its first binding's: after ``except A as exc``, a later ``except B as exc``
    raises TypeError for a B that is not an A, where Python handles it."""
    offenders = []
    for module in HOT_MODULES:
        for function in _functions(_source(module)):
            names = [node.name for node in ast.walk(function) if isinstance(node, ast.ExceptHandler) and node.name]
            offenders += [f"{module}.{function.name}: {name}" for name in sorted(set(names)) if names.count(name) > 1]
    assert offenders == []


def test_every_hot_module_is_a_module_of_ailb() -> None:
    for module in HOT_MODULES:
        assert module.startswith("ailb.") and importlib.util.find_spec(module) is not None, module
