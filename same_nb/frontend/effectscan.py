"""One code cell, scanned for the effects table: every call, store, magic and import, as written.

Names are not resolved here (``np.random.seed`` stays ``np``-rooted): what ``np`` means depends on the
cells before, so ``effectflow`` resolves them in notebook order. That keeps the scan a pure function
of the cell's source, cached like the variable analysis. Calls inside a def or class body are kept
apart (``DefScan``): they run where the function is used, not where it is defined. Lines refer to the
original cell source, IPython syntax included (converted through ``magics``).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache

from same_nb.frontend import magics
from same_nb.frontend.effects import config_leaves


class _Dynamic:
    def __repr__(self) -> str:
        return "DYNAMIC"


DYNAMIC = _Dynamic()          # a value only known at run time (a variable, an f-string with fields, ...)
MUTATING_METHODS = frozenset("append extend insert remove pop clear update setdefault sort reverse add discard "
                             "popitem".split())
_SHELL_REDIRECT = re.compile(r"(>>?)\s*([^\s;&|<>]+)")


@dataclass(frozen=True)
class Site:
    kind: str                 # call | store | magic | cell | shell | import
    name: str                 # dotted as written, call results as "()": "np.random.seed", "Path().write_text"
    line: int
    args: tuple = ()          # positional arguments: literal values or DYNAMIC
    kwargs: tuple = ()        # ((keyword, literal or DYNAMIC), ...)
    recv: object = DYNAMIC    # the receiver as a literal path: Path("x") in Path("x").write_text(...)
    scopes: tuple = ()        # callees of the enclosing `with` blocks
    text: str = ""            # magic arguments / shell command


@dataclass
class DefScan:
    """What a notebook function or class does when it is used."""
    sites: list[Site] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    simple_body: bool = True          # only simple statements: calling it can be replayed
    line: int = 0


@dataclass
class StmtScan:
    line: int
    sites: list[Site] = field(default_factory=list)   # what runs when the statement runs
    loads: list[str] = field(default_factory=list)    # names it reads (lambda bodies included)
    binds: list[str] = field(default_factory=list)    # names it binds at top level
    touches: list[str] = field(default_factory=list)  # top-level names it changes in place
    imports: list[tuple[str, str, str]] = field(default_factory=list)  # (alias, qualified name, statement)
    defs: dict[str, DefScan] = field(default_factory=dict)
    expr_call: str | None = None      # the callee when the statement is a call on its own
    simple: bool = False              # Expr / Assign / AugAssign / AnnAssign / Delete
    last: bool = False                # the cell's last statement: a bare expression there is displayed
    text: str | None = None           # the statement as Python (ast.unparse), when it may need replaying


@dataclass
class CellScan:
    statements: list[StmtScan] = field(default_factory=list)


@lru_cache(maxsize=8192)
def scan_cell(source: str) -> CellScan:
    """Never raises: a cell that cannot be parsed has no effects (the analysis reports it)."""
    scan = CellScan()
    try:
        _scan_into(scan, source.replace("\r\n", "\n").replace("\r", "\n"), 0)
    except (RecursionError, MemoryError):
        scan.statements.clear()
    return scan


def _scan_into(scan: CellScan, source: str, offset: int) -> None:
    magic = magics.find_cell_magic(source)
    if magic is not None:
        line = offset + magic.line
        if magic.name in magics.CODE_CELL_MAGICS:
            body = magic.body if magic.name != "timeit" else magics.timeit_code(magic.args) + "\n" + magic.body
            _scan_into(scan, body, line - (magic.name == "timeit"))
        elif magic.name == "writefile":
            tokens = magic.args.split()
            append = "-a" in tokens or "--append" in tokens
            names = [t for t in tokens if not t.startswith("-")]
            path = names[0] if names and not any(c in names[0] for c in "${") else DYNAMIC
            site = Site("cell", "writefile", line, args=(path, "a" if append else "w"))
            scan.statements.append(StmtScan(line, sites=[site], last=True))
        elif magic.name in magics.SCRIPT_MAGICS:
            scan.statements.append(StmtScan(line, sites=[Site("shell", magic.name, line, text=magic.body)],
                                            last=True))
        return
    try:
        tree, line_map = magics.parse_cell(source)
    except magics.Unparsable:
        return
    walker = _Walker(line_map, offset)
    body = tree.body
    for index, node in enumerate(body):
        st = walker.statement(node)
        st.last = index == len(body) - 1
        if _may_replay(st):
            st.text = ast.unparse(node)
        scan.statements.append(st)


def _may_replay(st: StmtScan) -> bool:
    """Whether the statement could change configuration: only those need their source kept."""
    if st.expr_call is not None and "." not in st.expr_call and "(" not in st.expr_call:
        return True                     # a notebook function called on its own
    leaves = config_leaves()
    return any(s.kind in ("store", "magic") or (s.kind == "call" and s.name.rpartition(".")[2] in leaves)
               for s in st.sites)


def dotted(node: ast.AST) -> str | None:
    """`np.random.seed`, `Path().write_text`, `df[].to_csv`; None for other expressions."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base is not None else f"?.{node.attr}"
    if isinstance(node, ast.Call):
        base = dotted(node.func)
        return f"{base}()" if base is not None else None
    if isinstance(node, ast.Subscript):
        base = dotted(node.value)
        return f"{base}[]" if base is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return dotted(node.left)        # Path("a") / "b" is a Path
    return None


def literal(node: ast.AST | None) -> object:
    """A literal value, a path built from literals (`Path("a") / "b"`, `os.path.join("a", "b")`), or DYNAMIC."""
    if node is None:
        return DYNAMIC
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        return "".join(parts) if len(parts) == len(node.values) else DYNAMIC
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
        left, right = literal(node.left), literal(node.right)
        if not (isinstance(left, str) and isinstance(right, str)):
            return DYNAMIC
        return left + right if isinstance(node.op, ast.Add) else _join(left, right)
    if isinstance(node, ast.Call) and not node.keywords:
        callee = dotted(node.func) or ""
        last = callee.rpartition(".")[2]
        args = [literal(a) for a in node.args]
        if not all(isinstance(a, str) for a in args):
            return DYNAMIC
        if last in ("Path", "PurePath", "PosixPath") or callee.endswith("path.join") or callee in ("join", "osp.join"):
            return _join(*args) if args else "."
        if last == "joinpath" and isinstance(node.func, ast.Attribute):
            base = literal(node.func.value)
            return _join(base, *args) if isinstance(base, str) else DYNAMIC
        if callee == "str" and len(args) == 1:
            return args[0]
    return DYNAMIC


def _join(*parts: str) -> str:
    import posixpath

    return posixpath.join(*parts)


class _Walker(ast.NodeVisitor):
    def __init__(self, line_map: list[int] | None, offset: int):
        self.line_map = line_map
        self.offset = offset

    def _line(self, node: ast.AST) -> int:
        line = getattr(node, "lineno", 1)
        if self.line_map:
            line = self.line_map[min(line, len(self.line_map)) - 1]
        return line + self.offset

    def statement(self, node: ast.stmt) -> StmtScan:
        self.st = StmtScan(self._line(node))
        self.target: DefScan | None = None     # the def/class body being walked
        self.deferred = 0                      # inside a lambda: runs later, so no sites
        self.scopes: list[str] = []
        self.inner: set[str] = set()           # names bound by lambdas and comprehensions
        self.binding = True
        self.visit(node)
        st = self.st
        st.loads = [n for n in dict.fromkeys(st.loads) if n not in self.inner]
        st.simple = isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            st.expr_call = dotted(node.value.func)
        return st

    # -- bookkeeping ----------------------------------------------------------------------------
    def _site(self, site: Site) -> None:
        if self.deferred:
            return
        (self.target.sites if self.target is not None else self.st.sites).append(site)

    def _bind(self, name: str) -> None:
        if self.target is None and self.binding and not self.deferred and name not in self.st.binds:
            self.st.binds.append(name)

    def _touch(self, node: ast.AST) -> None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        if isinstance(node, ast.Name) and self.target is None and not self.deferred:
            self.st.touches.append(node.id)

    # -- names ----------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            (self.target.loads if self.target is not None else self.st.loads).append(node.id)
        elif isinstance(node.ctx, ast.Store):
            self._bind(node.id)
        else:
            self._bind(node.id)
            if self.target is None:
                self.st.touches.append(node.id)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id)

    def visit_Global(self, node: ast.Global) -> None:
        if self.target is not None:
            self.target.simple_body = False

    def _store(self, target: ast.AST, line_node: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._store(elt, line_node)
            return
        if isinstance(target, ast.Starred):
            target = target.value
        if isinstance(target, ast.Name):
            self._bind(target.id)
            return
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            base = dotted(target.value)
            name = base + f".{target.attr}" if isinstance(target, ast.Attribute) and base else base
            if name:
                self._site(Site("store", name, self._line(line_node), scopes=tuple(self.scopes)))
            self._touch(target)
            self.visit(target.value)
            if isinstance(target, ast.Subscript):
                self.visit(target.slice)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._store(target, node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._store(node.target, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self.visit(ast.Name(node.target.id, ast.Load()))
        self._store(node.target, node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.visit(target)
            else:
                self._store(target, node)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._store(node.target, node)
        for child in node.body + node.orelse:
            self.visit(child)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        added = 0
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._store(item.optional_vars, node)
            if isinstance(item.context_expr, ast.Call):
                callee = dotted(item.context_expr.func)
                if callee:
                    self.scopes.append(callee)
                    added += 1
        for child in node.body:
            self.visit(child)
        del self.scopes[len(self.scopes) - added:]

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def _inner_scope(self, node: ast.AST, names: list[str]) -> None:
        self.inner.update(names)
        self.deferred += isinstance(node, ast.Lambda)
        binding, self.binding = self.binding, False
        self.generic_visit(node)
        self.binding = binding
        self.deferred -= isinstance(node, ast.Lambda)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        args = node.args
        self._inner_scope(node, [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs,
                                                  *filter(None, (args.vararg, args.kwarg)))])

    def _comprehension(self, node: ast.AST) -> None:
        names = [n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)]
        self._inner_scope(node, names)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    # -- definitions ----------------------------------------------------------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for dec in node.decorator_list:
            self.visit(dec)
        if isinstance(node, ast.ClassDef):
            for base in (*node.bases, *(k.value for k in node.keywords)):
                self.visit(base)
        else:
            for default in (*node.args.defaults, *filter(None, node.args.kw_defaults)):
                self.visit(default)
        self._bind(node.name)
        if self.target is not None:         # nested: part of the enclosing body
            for child in node.body:
                self.visit(child)
            return
        scan = DefScan(line=self._line(node))
        self.target, outer_scopes, self.scopes = scan, self.scopes, []
        for child in node.body:
            if not isinstance(child, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete, ast.Pass,
                                      ast.Return)):
                scan.simple_body = False
            self.visit(child)
        self.target, self.scopes = None, outer_scopes
        self.st.defs[node.name] = scan

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_TimeitBlock(self, node: magics.TimeitBlock) -> None:
        binding, self.binding = self.binding, False   # %timeit runs its code in a function
        for child in node.body:
            self.visit(child)
        self.binding = binding

    # -- imports --------------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.partition(".")[0]
            qualified = alias.name if alias.asname else bound
            statement = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
            self._import(node, bound, qualified, statement, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            return
        for alias in node.names:
            if alias.name == "*":
                continue
            bound = alias.asname or alias.name
            statement = f"from {node.module} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
            self._import(node, bound, f"{node.module}.{alias.name}", statement, node.module)

    def _import(self, node: ast.AST, bound: str, qualified: str, statement: str, module: str) -> None:
        if self.target is None and self.binding:
            self.st.imports.append((bound, qualified, statement))
            self._bind(bound)
        self._site(Site("import", module, self._line(node)))

    # -- calls ----------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        method = magics.ipython_method(node)
        if method is not None:
            texts = [literal(a) for a in node.args]
            if method == "run_line_magic" and len(texts) == 2 and all(isinstance(t, str) for t in texts):
                self._site(Site("magic", texts[0], self._line(node), text=texts[1]))
                (self.target.loads if self.target is not None else self.st.loads).extend(
                    magics.expansion_names(texts[1]))
            elif method in ("system", "getoutput") and texts and isinstance(texts[0], str):
                self._site(Site("shell", method, self._line(node), text=texts[0]))
            self.generic_visit(node)
            return
        name = dotted(node.func)
        if name is not None:
            recv = literal(node.func.value) if isinstance(node.func, ast.Attribute) else DYNAMIC
            self._site(Site("call", name, self._line(node), args=tuple(literal(a) for a in node.args),
                            kwargs=tuple((k.arg, literal(k.value)) for k in node.keywords if k.arg),
                            recv=recv, scopes=tuple(self.scopes)))
            if isinstance(node.func, ast.Attribute) and node.func.attr in MUTATING_METHODS:
                self._touch(node.func.value)
        self.generic_visit(node)


def shell_writes(command: str) -> list[tuple[str, str]]:
    """(path, "write" | "append") for each literal `> file` / `>> file` redirection of a shell command."""
    return [(path, "append" if arrow == ">>" else "write") for arrow, path in _SHELL_REDIRECT.findall(command)
            if not any(c in path for c in "${&")]
