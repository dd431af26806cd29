"""The package's layering, as ARCHITECTURE.md states it: every import inside same_nb points down the
layers (or stays in its own room), and no modules import each other in a circle. Lazy imports inside
functions count too: a circle through a function-level import is still a circle."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "same_nb"

# Rooms from the bottom up. A module may import its own room and any room of a lower rank; rooms of
# equal rank are peers and may not import each other (the two targets).
RANKS = {
    "same_nb._version": 0, "same_nb.errors": 0, "same_nb.text": 0,
    "same_nb.runtime": 1,
    "same_nb.frontend": 2,
    "same_nb.envs": 3,
    "same_nb.bundle": 4,
    "same_nb.store": 5,
    "same_nb.local": 6, "same_nb.kubeflow": 6,
    "same_nb.service": 7,
    "same_nb.report": 8, "same_nb.background": 8, "same_nb.lean": 8,
    "same_nb.background_sweep": 8.5,       # a sweep's process is stopped as a run's is (background.escalate)
    "same_nb.cli": 9, "same_nb.server": 9,
}
FACADE = "same_nb"          # the package root: public API for notebooks, imported by nothing inside
POD_MODULES = {"same_nb.kubeflow.component", "same_nb.kubeflow.podenv"}   # in Kubeflow pods: stdlib + the runtime


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
            if "migrations" not in p.parts or p.name == "env.py"}


def imports(path: Path, name: str) -> list[tuple[str, int, bool]]:
    """(absolute module imported, line, at module level) for every same_nb import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule when one exists
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in ALL else module for a in node.names]
        else:
            continue
        found += [(t, node.lineno, id(node) in top_level) for t in targets
                  if t == "same_nb" or t.startswith("same_nb.")]
    return found


ALL = modules()


def room(module: str) -> str | None:
    for candidate in sorted(RANKS, key=len, reverse=True):
        if module == candidate or module.startswith(candidate + "."):
            return candidate
    return None


def test_every_module_has_a_room():
    assert [m for m in ALL if m != FACADE and room(m) is None] == []


def test_imports_point_down_the_layers():
    wrong = []
    for name, path in ALL.items():
        if name == FACADE:
            continue
        source = room(name)
        for target, line, _ in imports(path, name):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: {name} imports {target}"
            if target == FACADE:
                wrong.append(f"{where} (the package root is the notebooks' API; import same_nb._version etc.)")
                continue
            dest = room(target)
            if dest is None:
                wrong.append(f"{where} (no such module)")
            elif dest != source and RANKS[dest] >= RANKS[source]:
                wrong.append(f"{where} ({dest} is not below {source})")
    assert wrong == []


def test_no_import_circles():
    graph = {name: {t for t, _, _ in imports(path, name) if t in ALL and t != FACADE}
             for name, path in ALL.items()}
    circles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> None:            # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_runtime_and_pod_modules_import_only_the_stdlib_at_module_level():
    """The step runtime and the pod component run where same-nb is not installed."""
    wrong = []
    for name, path in ALL.items():
        if not (name.startswith("same_nb.runtime") or name in POD_MODULES):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:                    # relative: must stay inside the runtime (or reach it)
                    continue
                mods = [node.module or ""]
            else:
                continue
            for m in mods:
                top = m.split(".")[0]
                if top != "__future__" and top not in sys.stdlib_module_names and not m.startswith("same_nb.runtime") \
                        and m not in POD_MODULES:
                    wrong.append(f"{name}:{node.lineno} imports {m}")
        if name.startswith("same_nb.runtime"):
            wrong += [f"{name}:{line} imports {t} (the runtime uses relative imports only)"
                      for t, line, _ in imports(path, name) if not t.startswith("same_nb.runtime")]
    assert wrong == []


def test_facade_imports_lazily():
    """`import same_nb` inside a kernel or pod must stay cheap: the root imports only its version."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    module_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(n) for n in module_level] == ["from ._version import __version__"]


@pytest.mark.parametrize("room_name", sorted(r for r in RANKS if (PACKAGE / r.split(".")[1]).is_dir()))
def test_each_room_says_what_it_is_for_and_what_it_may_import(room_name):
    init = PACKAGE / room_name.split(".")[1] / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "May import" in doc or "may import" in doc, f"{init}: docstring must state what it may import"
