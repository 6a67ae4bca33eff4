"""The repository's layout as designed: data at the top, one copy, no import circles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "aimc"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_time_edges() -> dict[str, set[str]]:
    """module -> the aimc modules it imports when it is imported (not inside functions
    or ``if TYPE_CHECKING``)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for sub in [node] if not isinstance(node, ast.If) else node.body:
                targets: list[str] = []
                if isinstance(sub, ast.Import):
                    targets = [a.name for a in sub.names]
                elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                    targets = [sub.module] + [f"{sub.module}.{a.name}" for a in sub.names]
                edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _all_edges() -> dict[str, set[str]]:
    """module -> every aimc module it imports anywhere: at module level, inside functions
    (deferred imports) and under ``if TYPE_CHECKING`` alike, relative imports resolved."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circles_in_aimc() -> None:
    """Failed before: ``build`` and ``checkpoint`` imported each other (``cache_dir``)."""
    edges = _import_time_edges()
    assert len(edges) > 20
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_no_import_circles_counting_imports_in_functions() -> None:
    """A deferred import hides a circle from the test above: once catalog ->
    lint -> policy -> measured -> resolve -> lint and runner <-> serverlog closed circles
    only through imports inside functions."""
    edges = _all_edges()
    serverlog = edges["aimc.run.serverlog"]
    assert "aimc.run.runner" in serverlog or "aimc.core.records" in serverlog
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_the_layers_contract_holds() -> None:
    """import-linter reads every import (in functions too) and checks the layers of
    pyproject.toml (docs/architecture.md): nothing imports from a layer above it."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_data_lives_at_the_top_level_once() -> None:
    """Failed before: the catalog, schemas and templates sat inside ``aimc/``."""
    for folder, pattern in (("recipes", "*.yaml"), ("schemas", "*.json"), ("templates", "*.j2")):
        assert list((ROOT / folder).rglob(pattern)), folder
        assert not (PACKAGE / folder).exists(), f"aimc/{folder} duplicates {folder}/"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if tracked:  # in a git checkout: no second copy of a data file anywhere
        names = [t for t in tracked if t.endswith((".schema.json", ".j2"))]
        stems = [Path(t).name for t in names]
        assert len(stems) == len(set(stems)), sorted(names)


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in tests/helpers/, tests/fakes/ or a conftest fixture: a test
    module never imports another (once 20 did, conftest included)."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            hits = [n for n in names if n.split(".")[:2][-1].startswith("test_")]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in hits[:1]]
    assert not found, found


#: Size bounds: a module says one thing, a function does one step.
MODULE_LINES = 500
FUNCTION_LINES = 60


def test_no_module_or_function_is_oversized() -> None:
    """No module of aimc over :data:`MODULE_LINES` lines, no function over
    :data:`FUNCTION_LINES` (from ``def`` to its last line, docstring included)."""
    big: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        if text.count("\n") > MODULE_LINES:
            big.append(f"{where}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES:
                    big.append(f"{where}:{node.lineno} {node.name}: {length} lines")
    assert not big, "\n".join(big)


def test_no_golden_file_names_the_checkout() -> None:
    """A golden file reads the same in a clone anywhere: none holds this checkout's path."""
    found = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "tests" / "golden").rglob("*"))
        if p.is_file() and str(ROOT) in p.read_text(encoding="utf-8", errors="replace")
    ]
    assert not found, found
