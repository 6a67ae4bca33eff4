"""The repository's layout as designed (issue 10): data at the top, one copy, no import circles."""

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
    """Before issue 10 ``build`` and ``checkpoint`` imported each other (``cache_dir``)."""
    edges = _import_time_edges()
    assert len(edges) > 20
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_every_module_imports_on_its_own() -> None:
    names = sorted(n for n in _import_time_edges() if not n.endswith("__main__"))
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    for name in names:
        subprocess.run([sys.executable, "-c", code, name], cwd=ROOT, check=True, timeout=60)


def test_data_lives_at_the_top_level_once() -> None:
    """Before issue 10 the catalog, schemas and templates sat inside ``aimc/``."""
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
