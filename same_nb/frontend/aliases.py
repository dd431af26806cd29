"""Which named objects a value may share, and what a notebook function's call returns.

`b = a`, `v = a[1:3]`, `x = d.get(k)`, `m = model.fit(X)` and `for r in rows` bind a name to an
object another name holds (or to a view or a part of it), so changing one in place changes the other.
The rules over-approximate: a false alias costs an extra data edge, a missed one a stale value.
A subscript by a list or a mask (`df[["a", "b"]]`, `a[[0, 2]]`, `df[df.x > 0]`, `a[(a > 0) & m]`) copies
in numpy and pandas, so it is no alias.
"""
from __future__ import annotations

import ast
from typing import Callable, Iterable

from same_nb.frontend.callees import (
    CACHE_DECORATORS,
    ELEMENT_FUNCTIONS,
    ELEMENT_METHODS,
    MUTATING_METHODS,
    PARTIAL_FUNCTIONS,
    RETURNS_SELF,
    VIEW_FUNCTIONS,
    VIEW_METHODS,
)
from same_nb.frontend.ir import Import

Resolve = Callable[[str], Iterable[str]]
_COPYING_INDEXES = (ast.List, ast.ListComp, ast.Compare)
_MASK_OPERATORS = (ast.BitAnd, ast.BitOr, ast.BitXor, ast.Invert)


def _copies(index: ast.AST) -> bool:
    """Whether indexing by ``index`` (list, mask) makes a copy rather than a view."""
    if isinstance(index, (ast.BinOp, ast.UnaryOp)):
        return isinstance(index.op, _MASK_OPERATORS)
    return isinstance(index, _COPYING_INDEXES)


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def root_name(node: ast.AST) -> str | None:
    """`df` for df, df.a, df["a"].b, *df; None when the object comes from a call or an expression."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def mutation_root(node: ast.AST) -> str | None:
    """Like root_name, also through calls that return a part of their receiver: `d.get("k").append(2)`."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            node = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in VIEW_METHODS):
            node = node.func.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def value_sources(node: ast.AST, resolve: Resolve, elements: bool = False) -> set[str]:
    """Names whose object the value of ``node`` may be, or be part of. With ``elements``, the names whose
    elements iterating over the value gives (a `for` target, a comprehension variable, tuple unpacking)."""
    kind = type(node)
    if kind is ast.Name:
        return set(resolve(node.id))
    if kind in (ast.Attribute, ast.Starred, ast.NamedExpr, ast.Await):
        return value_sources(node.value, resolve, elements)
    if kind is ast.Subscript:
        return set() if _copies(node.slice) else value_sources(node.value, resolve, elements)
    if kind is ast.Call:
        func = node.func
        if isinstance(func, ast.Attribute) and (func.attr in VIEW_METHODS
                                                or (elements and func.attr in ELEMENT_METHODS)):
            return value_sources(func.value, resolve, elements)
        callee = dotted(func)
        if callee in VIEW_FUNCTIONS and node.args:
            return value_sources(node.args[0], resolve, elements)
        if elements and callee in ELEMENT_FUNCTIONS:
            return set().union(*(value_sources(arg, resolve, True) for arg in node.args))
        return set()
    if kind is ast.IfExp:
        return value_sources(node.body, resolve, elements) | value_sources(node.orelse, resolve, elements)
    if kind is ast.BoolOp:
        return set().union(*(value_sources(value, resolve, elements) for value in node.values))
    if elements and kind in (ast.Tuple, ast.List, ast.Set):
        return set().union(*(value_sources(element, resolve) for element in node.elts))
    if elements and kind is ast.Dict:
        return set().union(*(value_sources(value, resolve) for value in node.values))
    return set()


def target_values(target: ast.AST, value: ast.AST | None) -> list[tuple[ast.Name, ast.AST | None, bool]]:
    """(name, the value it gets, whether it gets an element of that value) for each name an assignment
    target binds: `a, b = x, y` pairs a with x; `a, b = pair` gives both an element of pair."""
    if isinstance(target, ast.Name):
        return [(target, value, False)]
    if isinstance(target, (ast.Tuple, ast.List)):
        if (isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts)
                and not any(isinstance(part, ast.Starred) for part in (*target.elts, *value.elts))):
            return [pair for sub, part in zip(target.elts, value.elts) for pair in target_values(sub, part)]
        return [(name, value, True) for name in ast.walk(target) if isinstance(name, ast.Name)]
    if isinstance(target, ast.Starred):
        return target_values(target.value, value)
    return []   # attribute and item targets bind no name


def wrapped(value: ast.AST) -> str | None:
    """`g` for `functools.partial(g, ...)`: the function a value calls later."""
    if (isinstance(value, ast.Call) and dotted(value.func) in PARTIAL_FUNCTIONS and value.args
            and isinstance(value.args[0], ast.Name)):
        return value.args[0].id
    return None


def immutable(value: ast.AST | None) -> bool:
    """A literal that cannot change in place: a number, string, bytes, bool, None, or a tuple of those."""
    if isinstance(value, ast.Constant):
        return True
    if isinstance(value, ast.Tuple):
        return all(immutable(part) for part in value.elts)
    if isinstance(value, ast.UnaryOp):
        return immutable(value.operand)
    if isinstance(value, ast.BinOp):
        return immutable(value.left) and immutable(value.right)
    return isinstance(value, ast.JoinedStr)


def same_object(value: ast.AST) -> str | None:
    """`a` for `a` and for `a.fit(X)`, `a.set_params(...)` (which return their receiver): the name whose
    very object a value is."""
    if isinstance(value, ast.Name):
        return value.id
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in RETURNS_SELF
            and isinstance(value.func.value, ast.Name)):
        return value.func.value.id
    if isinstance(value, ast.Attribute) and value.attr in MUTATING_METHODS and isinstance(value.value, ast.Name):
        return value.value.id   # `push = items.append`: calling push changes that very object
    return None


def called(value: ast.AST) -> str | None:
    """`Model` for `Model(...)`: the notebook name a value was returned by."""
    return value.func.id if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) else None


def returns_code(value: ast.AST | None, nested: set[str]) -> bool:
    """Whether a returned (or yielded) value may run the function's code later: a lambda, one of the
    functions and classes defined inside it (``nested``), or a container or partial holding one. A lambda
    passed to a call (`sorted(x, key=lambda v: -v)`) has run by the time the call returns."""
    if isinstance(value, ast.Lambda):
        return True
    if isinstance(value, ast.Name):
        return value.id in nested
    if isinstance(value, (ast.Tuple, ast.List, ast.Set)):
        parts = value.elts
    elif isinstance(value, ast.Dict):
        parts = value.values
    elif isinstance(value, ast.IfExp):
        parts = [value.body, value.orelse]
    elif isinstance(value, ast.BoolOp):
        parts = value.values
    elif isinstance(value, ast.Call) and dotted(value.func) in PARTIAL_FUNCTIONS:
        parts = value.args
    else:
        return False
    return any(returns_code(part, nested) for part in parts)


def caches_results(decorators: list[ast.expr]) -> bool:
    """`@functools.lru_cache` / `@cache`: a call changes what later calls return."""
    return any(dotted(d.func if isinstance(d, ast.Call) else d) in CACHE_DECORATORS for d in decorators)


def import_alias(imp: Import, source: str, name: str, cell: int, line: int) -> Import | None:
    """The import that binds ``name`` to what ``imp`` binds to ``source`` (`lib = np` after `import numpy
    as np` replays as `import numpy as lib`); None when ``imp`` is not a plain import statement."""
    try:
        node = ast.parse(imp.statement).body[0]
    except (SyntaxError, ValueError, IndexError):
        return None
    if not isinstance(node, (ast.Import, ast.ImportFrom)):
        return None
    for alias in node.names:
        if isinstance(node, ast.Import):
            if (alias.asname or alias.name.partition(".")[0]) != source:
                continue
            # `import a.b` binds the package a, with a.b imported: so does __import__("a.b").
            statement = (f"import {alias.name} as {name}" if alias.asname or "." not in alias.name
                         else f"{name} = __import__({alias.name!r})")
        elif (alias.asname or alias.name) == source:
            statement = f"from {'.' * node.level}{node.module or ''} import {alias.name} as {name}"
        else:
            continue
        return Import(module=imp.module, top=imp.top, statement=statement, names=[name], cell=cell, line=line)
    return None
