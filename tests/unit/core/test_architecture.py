"""The house rules on the shape of ``src/ailb``, read from the source with ``ast``: small functions and modules,
no import cycle, and the HTTP edge, the control plane and the dashboard kept off the composition root."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import ailb

SRC = Path(ailb.__file__).parent
GENERATED = SRC / "control" / "generated"  # protoc's output
MAX_FUNCTION_LINES = 50
MAX_MODULE_LINES = 400
EDGES = ("http", "control", "dashboard")  # they see the gateway through ports they declare, never bootstrap


def sources() -> Iterator[tuple[str, Path]]:
    """Every module of the package but the generated stubs, by dotted name."""
    for path in sorted(SRC.rglob("*.py")):
        if GENERATED in path.parents:
            continue
        parts = ("ailb", *path.relative_to(SRC).with_suffix("").parts)
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def test_no_function_is_over_50_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for _, path in sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "functions over 50 lines:\n" + "\n".join(long)


def test_no_module_is_over_400_lines() -> None:
    long = [
        f"{path.relative_to(SRC)} ({lines} lines)"
        for _, path in sources()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "modules over 400 lines:\n" + "\n".join(long)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported: top level, into ``if``/``try`` blocks, but not into
    ``if TYPE_CHECKING:`` nor into function or class bodies' functions."""
    for statement in body:
        if isinstance(statement, ast.If):
            if not _is_type_checking(statement.test):
                yield from _run_time_statements(statement.body)
            yield from _run_time_statements(statement.orelse)
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody, *(h.body for h in statement.handlers)):
                yield from _run_time_statements(block)
        else:
            yield statement


def _imported(statement: ast.stmt, module: str, is_package: bool) -> list[str]:
    """The dotted names ``statement`` imports; ``from a import b`` is ``a.b`` when that is a module, else ``a``."""
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    if not isinstance(statement, ast.ImportFrom):
        return []
    base = statement.module or ""
    if statement.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - statement.level + 1]
        base = ".".join([*anchor, *([statement.module] if statement.module else [])])
    return [f"{base}.{alias.name}" for alias in statement.names] + [base]


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports at run time (module level, ``if TYPE_CHECKING:`` left out)."""
    paths = dict(sources())
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for statement in _run_time_statements(ast.parse(path.read_text()).body):
            names = _imported(statement, module, is_package)
            if isinstance(statement, ast.ImportFrom):  # a submodule when it is one, else the module named
                submodules = [name for name in names[:-1] if name in paths]
                names = submodules if len(submodules) == len(names) - 1 else [*submodules, names[-1]]
            for name in names:
                while name and name not in paths:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, …, a]``), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)) is not None:
            return cycle
    return None


def test_there_is_no_import_cycle_at_run_time() -> None:
    graph = import_graph()
    assert graph["ailb.http.app"] >= {"ailb.http.chat", "ailb.http.ports"}  # the graph sees what it should
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_edges_never_import_bootstrap_not_even_for_types() -> None:
    offenders = []
    for module, path in sources():
        if module.partition(".")[2].split(".")[0] not in EDGES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(f"{node.module}.{alias.name}" for alias in node.names)]
            if any(name == "ailb.bootstrap" or name.startswith("ailb.bootstrap.") for name in names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, "imports of ailb.bootstrap: " + ", ".join(offenders)


# Each foreign library is imported (at run time) by its one seam only: a module, or every module of a package.
# aiohttp is no seam's: upstream calls go through providers/http1.py (tests and bench still use it).
NOWHERE = "-"
SEAMS = {
    "aiohttp": NOWHERE,
    "chromadb": "ailb.stores",
    "redis": "ailb.state",
    "grpc": "ailb.control",
    "prometheus_client": "ailb.observability",
    "opentelemetry": "ailb.observability.otel",
}


def _foreign_imports(nodes: Iterable[ast.AST]) -> Iterator[tuple[str, int]]:
    """Top-level names of every import in ``nodes`` that runs (``if TYPE_CHECKING:`` blocks skipped)."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _foreign_imports(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno
        yield from _foreign_imports(ast.iter_child_nodes(node))


def test_each_foreign_library_is_imported_only_at_its_seam() -> None:
    offenders = []
    for module, path in sources():
        for library, line in _foreign_imports([ast.parse(path.read_text())]):
            seam = SEAMS.get(library)
            if seam is not None and module != seam and not module.startswith(seam + "."):
                where = "it is not used in src" if seam == NOWHERE else f"its seam is {seam}"
                offenders.append(f"{library} in {path.relative_to(SRC)}:{line} ({where})")
    assert not offenders, "\n".join(offenders)


def test_the_seam_check_sees_imports_in_functions_but_not_type_checking_blocks() -> None:
    source = "if TYPE_CHECKING:\n    import grpc\nelse:\n    import redis\ndef f():\n    from aiohttp import web\n"
    assert sorted(_foreign_imports([ast.parse(source)])) == [("aiohttp", 6), ("redis", 4)]
