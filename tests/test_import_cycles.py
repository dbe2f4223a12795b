"""No module of `emu_video` may import another in a loop.

Every import statement counts, wherever it sits: at module level, inside functions and methods (a deferred
import is still a dependency, and deferring is the usual way a circle gets hidden), and literal
`importlib.import_module("emu_video....")` calls. Only imports under `if TYPE_CHECKING:` are left out:
they never run.

`from pkg import name` depends on the submodule `pkg.name` when there is one, else on `pkg` itself (its
`__init__.py`). Importing a submodule is not counted as depending on the packages above it (every package
whose `__init__` re-exports its submodules would otherwise be a circle).

Run as a script to print the report: `python tests/test_import_cycles.py [SOURCE_ROOT [PACKAGE]]`.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "emu_video"
MAX_CYCLES_LISTED = 50  # per group of mutually importing modules


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    deferred: bool  # inside a function or method body


@dataclass
class ImportGraph:
    files: dict[str, Path]  # module name -> file
    edges: list[Edge]

    def successors(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {m: set() for m in self.files}
        for e in self.edges:
            out[e.source].add(e.target)
        return out


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Module name -> source file, for every .py file of `package` under `root` (a package is its __init__)."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _literal_import_call(node: ast.Call) -> str | None:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str]):
        self.module, self.known = module, known
        self.package_parts = module.split(".") if is_package else module.split(".")[:-1]
        self.depth = 0  # function nesting
        self.found: list[tuple[str, int, bool]] = []

    def _resolve(self, name: str) -> str | None:
        """The longest known module that `name` is or lies in (`a.b.Class` -> `a.b`)."""
        parts = name.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in self.known:
                return candidate
            parts.pop()
        return None

    def _add(self, name: str | None, node: ast.AST) -> None:
        target = self._resolve(name) if name else None
        if target is not None:
            self.found.append((target, node.lineno, self.depth > 0))

    def _function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):  # never runs: only its else branch counts
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            keep = len(self.package_parts) - (node.level - 1)
            if keep <= 0:
                return  # above the top package: not ours
            base = ".".join(self.package_parts[:keep] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in self.known else base, node)

    def visit_Call(self, node: ast.Call) -> None:
        self._add(_literal_import_call(node), node)
        self.generic_visit(node)


def import_graph(root: Path = REPO, package: str = PACKAGE) -> ImportGraph:
    files = module_files(root, package)
    known = set(files)
    edges = []
    for module, path in files.items():
        collector = _ImportCollector(module, path.name == "__init__.py", known)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        edges += [Edge(module, target, line, deferred) for target, line, deferred in collector.found]
    return ImportGraph(files, edges)


def cyclic_groups(graph: ImportGraph) -> list[list[str]]:
    """Strongly connected components that hold a cycle (two or more modules, or one importing itself)."""
    succ = graph.successors()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in succ[v]:
                groups.append(sorted(group))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return sorted(groups)


def elementary_cycles(graph: ImportGraph, group: list[str], limit: int = MAX_CYCLES_LISTED) -> list[list[str]]:
    """The simple cycles within one group, each starting at its smallest module (at most `limit`)."""
    members, all_succ = set(group), graph.successors()
    succ = {v: sorted(w for w in all_succ[v] if w in members) for v in group}
    cycles: list[list[str]] = []

    def extend(start: str, path: list[str], seen: set[str]) -> None:
        for w in succ[path[-1]]:
            if len(cycles) >= limit:
                return
            if w == start:
                cycles.append([*path, start])
            elif w > start and w not in seen:
                seen.add(w)
                extend(start, [*path, w], seen)
                seen.discard(w)

    for start in group:
        extend(start, [start], {start})
    return cycles


def cycle_report(graph: ImportGraph, root: Path = REPO) -> str:
    groups = cyclic_groups(graph)
    if not groups:
        return ""

    def rel(module: str) -> str:
        return str(graph.files[module].relative_to(root))

    lines = [f"{len(groups)} group(s) of modules import each other in a loop (imports inside functions count):"]
    for n, group in enumerate(groups, 1):
        members = set(group)
        lines.append(f"\n[{n}] {len(group)} module(s):")
        lines += [f"    {rel(m)}" for m in group]
        lines.append("  imports within the group:")
        inner = sorted({e for e in graph.edges if e.source in members and e.target in members},
                       key=lambda e: (e.source, e.line, e.target))
        for e in inner:
            where = "inside a function" if e.deferred else "module level"
            lines.append(f"    {rel(e.source)}:{e.line} -> {rel(e.target)}  ({where})")
        cycles = elementary_cycles(graph, group)
        lines.append(f"  cycles{' (first ' + str(len(cycles)) + ')' if len(cycles) >= MAX_CYCLES_LISTED else ''}:")
        lines += ["    " + " -> ".join(cycle) for cycle in cycles]
    return "\n".join(lines)


def _top_subpackages() -> list[str]:
    return sorted(p.name for p in (REPO / PACKAGE).iterdir() if (p / "__init__.py").is_file())


def test_no_import_cycles_in_the_package():
    graph = import_graph()
    assert len(graph.files) > 10 and graph.edges  # the walk found the sources
    report = cycle_report(graph)
    assert not report, "\n" + report


@pytest.mark.parametrize("subpackage", _top_subpackages())
def test_no_import_cycle_touches_subpackage(subpackage):
    """The same check, one verdict per top-level subpackage (a cycle fails every subpackage it passes through)."""
    graph = import_graph()
    prefix = f"{PACKAGE}.{subpackage}"
    touching = [g for g in cyclic_groups(graph) if any(m == prefix or m.startswith(prefix + ".") for m in g)]
    if touching:
        kept = {m for g in touching for m in g}
        sub = ImportGraph({m: f for m, f in graph.files.items() if m in kept},
                          [e for e in graph.edges if e.source in kept and e.target in kept])
        pytest.fail("\n" + cycle_report(sub), pytrace=False)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_deferred_relative_and_dynamic_imports(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.a import A\n",
        "pkg/a.py": "class A:\n    def load(self):\n        from pkg import b\n        return b\n",
        "pkg/b.py": "from . import c\n",
        "pkg/c.py": "import importlib\n\ndef f():\n    return importlib.import_module('pkg.a')\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/d.py": "from ..e import thing\n",
        "pkg/e.py": "thing = 1\n\ndef g():\n    from .sub.d import thing\n",
        "pkg/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.f import F\n",
        "pkg/f.py": "import pkg.typed\n",
        "pkg/g.py": "def h():\n    import pkg.g\n",
    })
    graph = import_graph(tmp_path, "pkg")
    groups = cyclic_groups(graph)
    assert groups == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.e", "pkg.sub.d"], ["pkg.g"]]
    report = cycle_report(graph, tmp_path)
    assert "pkg/a.py:3 -> pkg/b.py  (inside a function)" in report
    assert "pkg/b.py:1 -> pkg/c.py  (module level)" in report
    assert "pkg.a -> pkg.b -> pkg.c -> pkg.a" in report
    assert "pkg/typed.py" not in report  # TYPE_CHECKING imports never run


if __name__ == "__main__":
    src = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO
    pkg = sys.argv[2] if len(sys.argv) > 2 else PACKAGE
    text = cycle_report(import_graph(src, pkg), src)
    print(text or f"no import cycles in {pkg}/")
    sys.exit(1 if text else 0)
