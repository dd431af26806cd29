"""Static analysis of one code cell: what each top-level statement reads, binds, mutates and imports.

One ``ast.parse`` and one visitor pass per cell. Cells with IPython syntax (magics, ``!shell``, ``x?``)
are converted by IPython first (see ``magics``); lines always refer to the original cell source.
Python's scoping rules (which scope a name lives in, what is surely bound) are in ``scopes``.
Reads are conservative: a name bound on only some paths of a statement still counts as read after it.
"""
from __future__ import annotations

import ast
import importlib.util
import keyword
from dataclasses import dataclass, field

from same_nb.frontend import magics
from same_nb.frontend.scopes import DEFERRED, IN_SCOPE, MODULE, TOP, Scope, ScopeWalker


@dataclass
class ImportInfo:
    module: str              # dotted module as written ("sklearn.linear_model"); for "from . import x" keep the dots
    top: str                 # top-level name ("sklearn")
    statement: str           # replayable source of just this import ("import numpy as np", "from a.b import c as d")
    names: list[str]         # names it binds at top level (["np"], ["d"])
    line: int                # 1-based line in the ORIGINAL cell source
    dynamic: bool = False    # importlib.import_module("x") / __import__("x") with a literal argument
    nested: bool = False     # inside a function/class body (not bound at top level)


@dataclass
class Mutation:
    name: str                # the top-level name whose object is mutated in place
    line: int
    # "item assignment" | "attribute assignment" | "augmented assignment" | "method append()" | "inplace=True" |
    # "del item"
    how: str


@dataclass
class OpaqueCall:
    name: str                # a top-level name passed as an argument
    line: int
    callee: str              # dotted callee as written ("process", "np.random.shuffle")


@dataclass
class Statement:
    line: int                                   # first line of the statement in the original cell source
    # names read before being bound (execution order), deduped, in first-read order
    reads: list[str] = field(default_factory=list)
    # names bound at top level (assign, augassign, for/with targets, walrus, def, class, import, except-as)
    binds: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)   # names removed by `del name`
    # def/class name -> global names its body reads when called (deferred reads)
    defines: dict[str, list[str]] = field(default_factory=dict)
    mutations: list[Mutation] = field(default_factory=list)
    opaque_calls: list[OpaqueCall] = field(default_factory=list)
    imports: list[ImportInfo] = field(default_factory=list)


@dataclass
class Finding:
    line: int
    code: str                # "star-import" | "exec" | "eval" | "globals" | "syntax-error" | ...
    message: str
    severity: str = "warning"


@dataclass
class CellAnalysis:
    statements: list[Statement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    requirements: list[tuple[int, str]] = field(default_factory=list)  # (line, "pandas>=2") from !pip / %pip install


MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "remove", "pop", "clear", "update", "setdefault", "sort", "reverse",
    "add", "discard", "popitem", "difference_update", "intersection_update", "symmetric_difference_update",
    "appendleft", "extendleft", "popleft", "rotate", "fit", "fit_transform", "fit_predict", "partial_fit",
    "set_params", "resize", "fill", "put", "itemset", "__setitem__", "__delitem__",
})
# Builtins that never mutate their arguments, so passing a name to them is not an opaque call.
PURE_BUILTINS = frozenset({
    "print", "len", "str", "repr", "int", "float", "bool", "list", "tuple", "dict", "set", "frozenset",
    "sorted", "sum", "min", "max", "any", "all", "enumerate", "zip", "range", "isinstance", "issubclass",
    "type", "id", "hash", "round", "abs", "format", "display", "iter", "getattr", "hasattr", "callable",
    "map", "filter", "divmod", "pow", "hex", "bin", "oct", "ord", "chr", "reversed", "open", "bytes",
    "complex", "ascii", "dir", "help",
})
_DYNAMIC_IMPORTERS = frozenset({"importlib.import_module", "import_module", "__import__"})


def analyze_cell(source: str) -> CellAnalysis:
    """Analyze one code cell. Never raises: code that cannot be parsed gives an error Finding."""
    result = CellAnalysis()
    try:
        _analyze_into(result, source.replace("\r\n", "\n").replace("\r", "\n"), offset=0, timeit=False)
    except (RecursionError, MemoryError):  # the parser and the walker give up on extremely deep nesting
        result.findings.append(Finding(1, "too-complex", "the cell is nested too deeply to analyze", "error"))
    return result


def _analyze_into(result: CellAnalysis, source: str, offset: int, timeit: bool) -> None:
    magic = magics.find_cell_magic(source)
    if magic is not None:
        _analyze_cell_magic(result, magic, offset, timeit)
        return
    try:
        tree, line_map = magics.parse_cell(source)
    except magics.Unparsable as error:
        result.findings.append(Finding(error.line + offset, "syntax-error", error.message, "error"))
        return
    body = tree.body
    if timeit and body:
        body = [magics.TimeitBlock(body=body, lineno=1, col_offset=0)]
    walker = _Walker(result, line_map, offset)
    result.statements.extend(walker.statement(node) for node in body)


def _analyze_cell_magic(result: CellAnalysis, magic: magics.CellMagic, offset: int, timeit: bool) -> None:
    line = offset + magic.line
    if magic.name == "timeit":
        # The setup code on the %%timeit line runs with the body, in the same function.
        _analyze_into(result, magics.timeit_code(magic.args) + "\n" + magic.body, line - 1, timeit=True)
    elif magic.name in magics.CODE_CELL_MAGICS:
        _analyze_into(result, magic.body, line, timeit)
        target = magics.capture_target(magic.args) if magic.name == "capture" else None
        if target:  # bound once the body has run
            result.statements.append(Statement(line, binds=[target]))
    else:  # other cell magics run their body as something other than Python
        outputs = magics.script_outputs(magic.name, magic.args)
        if outputs:
            result.statements.append(Statement(line, binds=outputs))
        if magic.name == "writefile":
            result.findings.append(Finding(line, "writefile", f"%%writefile writes {magic.args or 'a file'}; "
                                           "code that later imports or reads it is not linked to this cell"))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _root_name(node: ast.AST) -> str | None:
    """`df` for df, df.a, df["a"].b, *df; None when the object comes from a call or an expression."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class _Walker(ScopeWalker):
    """Records what one top-level statement reads, binds, mutates, imports and passes to calls."""

    def __init__(self, result: CellAnalysis, line_map: list[int] | None, offset: int):
        self.result = result
        self.line_map = line_map
        self.offset = offset

    def statement(self, node: ast.stmt) -> Statement:
        decorators = getattr(node, "decorator_list", [])
        self.stmt = Statement(self._line(min((node, *decorators), key=lambda part: part.lineno)))
        self.read_set: set[str] = set()
        self._start_scopes()
        self.owner: str | None = None     # the top-level def/class that deferred reads belong to
        self.augmented: ast.AST | None = None
        self.visit(node)
        return self.stmt

    def _line(self, node: ast.AST) -> int:
        line = node.lineno
        if self.line_map:
            line = self.line_map[min(line, len(self.line_map)) - 1]
        return line + self.offset

    def _finding(self, node: ast.AST, code: str, message: str, severity: str = "warning") -> None:
        self.result.findings.append(Finding(self._line(node), code, message, severity))

    # -- names ------------------------------------------------------------------------------
    def _read(self, name: str) -> None:
        where = self._where(name)
        if where == DEFERRED and self.owner is not None:
            names = self.stmt.defines[self.owner]
            if name not in names:
                names.append(name)
        elif where != IN_SCOPE and name not in self.scopes[0].bound and name not in self.read_set:
            if name != "get_ipython":  # IPython's own builtin, and what magics are converted to
                self.read_set.add(name)
                self.stmt.reads.append(name)

    def _bind(self, name: str, scope_index: int = -1) -> None:
        scope = self.scopes[scope_index]
        if scope.kind == MODULE or name in scope.globals:
            if self.functions:  # `global x; x = ...` in a function binds x when the function runs
                self._read(name)
                return
            if name not in self.stmt.binds:
                self.stmt.binds.append(name)
        super()._bind(name, scope_index)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id)
        elif isinstance(node.ctx, ast.Store):
            self._bind(node.id)
        else:
            scope = self.scopes[-1]
            if scope.kind == MODULE and node.id not in self.stmt.deletes:
                self.stmt.deletes.append(node.id)
            scope.bound.discard(node.id)

    # -- assignments and in-place changes ---------------------------------------------------
    def visit_Assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        if isinstance(node, ast.Assign):
            targets = node.targets
        else:  # `x: int` alone binds nothing
            self.visit(node.annotation)
            targets = [node.target] if node.value is not None else []
        for target in targets:
            self.visit(target)

    visit_AnnAssign = visit_Assign

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._read(node.target.id)
            self.visit(node.value)
            self._bind(node.target.id)
            return
        self.augmented = node.target
        self.visit(node.target)
        self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript | ast.Attribute) -> None:
        self.generic_visit(node)
        kind = "item" if isinstance(node, ast.Subscript) else "attribute"
        if node is self.augmented:
            self._mutation(node, "augmented assignment")
        elif isinstance(node.ctx, ast.Store):
            self._mutation(node, f"{kind} assignment")
        elif isinstance(node.ctx, ast.Del):
            self._mutation(node, f"del {kind}")

    visit_Attribute = visit_Subscript

    def _mutation(self, node: ast.AST, how: str) -> None:
        name = _root_name(node)
        if name is not None and not self.functions and self._where(name) == TOP:
            self.stmt.mutations.append(Mutation(name, self._line(node), how))

    # -- scopes -----------------------------------------------------------------------------
    def _define(self, name: str, scope: Scope, body: list[ast.stmt]) -> None:
        """A top-level def/class owns the deferred reads in its body: they go to `defines`."""
        if self.owner is not None or len(self.scopes) > 1:
            super()._define(name, scope, body)
            return
        self.owner = name
        self.stmt.defines.setdefault(name, [])
        super()._define(name, scope, body)
        self.owner = None

    # -- imports ----------------------------------------------------------------------------
    def _import(self, node: ast.AST, module: str, top: str, statement: str, names: list[str],
                dynamic: bool = False) -> None:
        nested = len(self.scopes) > 1
        self.stmt.imports.append(ImportInfo(module, top, statement, [] if nested or dynamic else names,
                                            self._line(node), dynamic=dynamic, nested=nested))
        for name in names:
            self._bind(name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            as_name = f" as {alias.asname}" if alias.asname else ""
            self._import(node, alias.name, alias.name.partition(".")[0], f"import {alias.name}{as_name}",
                         [alias.asname or alias.name.partition(".")[0]])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        aliases = [alias for alias in node.names if alias.name != "*"]
        if len(aliases) < len(node.names):
            self._finding(node, "star-import", f"`from {module} import *` binds names the analysis cannot see; "
                          "import the names you use explicitly")
        imported = ", ".join(alias.name + (f" as {alias.asname}" if alias.asname else "") for alias in aliases)
        self._import(node, module, "" if node.level else module.partition(".")[0],
                     f"from {module} import {imported or '*'}", [alias.asname or alias.name for alias in aliases])

    def _dynamic_import(self, node: ast.Call, callee: str) -> None:
        if not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
            return
        module = node.args[0].value
        if module.startswith("."):
            package = node.args[1] if len(node.args) > 1 else None
            if callee == "__import__" or not isinstance(package, ast.Constant) or not isinstance(package.value, str):
                return
            try:
                module = importlib.util.resolve_name(module, package.value)
            except (ImportError, ValueError):
                return
        if all(part.isidentifier() and not keyword.iskeyword(part) for part in module.split(".")):
            self._import(node, module, module.partition(".")[0], f"import {module}", [], dynamic=True)

    # -- calls ------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        method = magics.ipython_method(node)
        if method is not None:
            self._ipython_call(node, method)
            return
        self.generic_visit(node)
        func = node.func
        callee = _dotted(func)
        if callee in ("exec", "eval"):
            self._finding(node, callee, f"{callee}() runs code the analysis cannot see; what it reads and binds "
                          "is not tracked")
        elif callee == "globals" or (callee in ("locals", "vars") and not node.args
                                     and self.scopes[-1].kind == MODULE):
            self._finding(node, "globals", f"{callee}() exposes the notebook's variables; reads and writes "
                          "through it are not tracked")
        elif callee in _DYNAMIC_IMPORTERS:
            self._dynamic_import(node, callee)
        if not self.functions:
            self._call_effects(node, callee)

    def _call_effects(self, node: ast.Call, callee: str | None) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            if func.attr in MUTATING_METHODS:
                self._mutation(func.value, f"method {func.attr}()")
            elif any(kw.arg == "inplace" and not (isinstance(kw.value, ast.Constant) and not kw.value.value)
                     for kw in node.keywords):
                self._mutation(func.value, "inplace=True")
        elif callee in ("setattr", "delattr") and node.args:
            self._mutation(node.args[0], "attribute assignment" if callee == "setattr" else "del attribute")
            return
        if callee in PURE_BUILTINS:
            return
        passed = []
        for arg in (*node.args, *(kw.value for kw in node.keywords)):
            name = _root_name(arg)
            if name is not None and name not in passed and self._where(name) == TOP:
                passed.append(name)
                callee = callee or ast.unparse(func)[:80]
                self.stmt.opaque_calls.append(OpaqueCall(name, self._line(node), callee))

    def _ipython_call(self, node: ast.Call, method: str) -> None:
        for arg in (*node.args, *(kw.value for kw in node.keywords)):
            self.visit(arg)
        texts = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        effects = magics.magic_effects(method, texts)
        for name in effects.reads:
            self._read(name)
        line = self._line(node)
        self.result.requirements.extend((line, spec) for spec in effects.requirements)
        self.result.findings.extend(Finding(line, *finding) for finding in effects.findings)
