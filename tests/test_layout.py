"""vaelib's shape: no import cycle, no vaelib import hidden in a function, short functions, a README
line for every module. Each test names what broke the rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vaelib"
README = PACKAGE.parent / "README.md"
MODULES = {path.stem: ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}
LONGEST_FUNCTION = 60  # lines, decorators and docstring included
LAZY_IMPORTS_ALLOWED = {"__main__"}  # the command line imports heavy modules only for the command run


def _vaelib_imports(node: ast.AST) -> set[str]:
    """The vaelib modules that `from .x import ...` / `from . import x` statements under `node` import."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.ImportFrom) and sub.level == 1:
            names = [sub.module.split(".")[0]] if sub.module else [a.name for a in sub.names]
            found.update(name for name in names if name in MODULES)
    return found


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_vaelib_module_imports_another_inside_a_function():
    hidden = [f"{name}.{fn.name} imports {sorted(_vaelib_imports(fn))}"
              for name, tree in MODULES.items() if name not in LAZY_IMPORTS_ALLOWED
              for fn in _functions(tree) if _vaelib_imports(fn)]
    assert hidden == []


def test_the_modules_import_each_other_without_a_cycle():
    graph = {name: _vaelib_imports(tree) - {name} for name, tree in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(name):] + (name,)))
        if name not in done:
            for other in sorted(graph[name]):
                visit(other, path + (name,))
            done.add(name)

    for name in graph:
        visit(name, ())


def test_no_function_is_longer_than_the_limit():
    long = [(fn.end_lineno - fn.lineno + 1 + len(fn.decorator_list), f"{name}.{fn.name}")
            for name, tree in MODULES.items() for fn in _functions(tree)]
    assert [entry for entry in long if entry[0] > LONGEST_FUNCTION] == []


def test_the_readme_layout_gives_every_module_a_line():
    layout = README.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    missing = [f"{name}.py" for name in MODULES if name != "__init__" and f"  {name}.py " not in layout]
    assert missing == []
