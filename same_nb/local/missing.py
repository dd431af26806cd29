"""Why a step ended without a variable later steps read: where the step binds it, and the statement
around that binding (a branch not taken, a loop that ran zero times, an exception handled first)."""
from __future__ import annotations

import ast
import re

from same_nb.frontend.ir import Step

_MISSING = re.compile(r"expected to define (.*?) but")
_NAME = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)' for ")

_WHY = {ast.If: "inside an `if` whose branch did not run", ast.For: "inside a `for` loop that ran zero times",
        ast.AsyncFor: "inside a `for` loop that ran zero times", ast.While: "inside a `while` loop that never ran",
        ast.Try: "inside a `try` whose binding was skipped by an exception",
        ast.With: "inside a `with` block that exited early", ast.Match: "inside a `match` case that did not match"}


def missing_names(message: str) -> list[str]:
    found = _MISSING.search(message or "")
    return _NAME.findall(found.group(1) + " for ") if found else []


def explain_missing(step: Step, names: list[str]) -> str:
    """One sentence per name: the cell and line of each binding in ``step`` and why it may not run."""
    parts = []
    for name in names:
        sites = []
        for cell in step.cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(cell.source)
            except (SyntaxError, ValueError):       # IPython syntax: no location, the message stays general
                continue
            for top in tree.body:
                line = _binding_line(top, name)
                if line is not None:
                    why = next((w for kind, w in _WHY.items() if isinstance(top, kind)), "")
                    sites.append(f"cell {cell.number}, line {line}" + (f" ({why})" if why else ""))
        if sites:
            parts.append(f"'{name}' is bound at {'; '.join(sites)}, which did not bind it in this run")
        else:
            parts.append(f"'{name}' is not bound by plain code in this step (only through exec, globals() or "
                         f"IPython syntax), so the analysis could not tell where")
    return "; ".join(parts) + "."


def _binding_line(node: ast.AST, name: str) -> int | None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, ast.Store):
            return sub.lineno
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub.name == name:
            return sub.lineno
        if isinstance(sub, ast.alias) and (sub.asname or sub.name.split(".")[0]) == name:
            return getattr(sub, "lineno", None) or getattr(node, "lineno", None)
    return None
