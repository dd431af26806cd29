"""The cell walker: what one top-level statement reads, binds, changes in place, aliases and defines.

Names, assignments, aliases, in-place changes and function bodies are here; imports and calls in
``calls``; Python's scoping rules in ``scopes``. A name bound earlier in the same statement is the
statement's own: changing it is no input, but the names it aliases are (`for r in rows: r["v"] = 1`
changes rows, not a pre-existing r).
"""
from __future__ import annotations

import ast

from same_nb.frontend.aliases import (
    caches_results,
    called,
    immutable,
    mutation_root,
    returns_code,
    same_object,
    target_values,
    value_sources,
    wrapped,
)
from same_nb.frontend.callees import MUTATING_METHODS
from same_nb.frontend.calls import CallWalker
from same_nb.frontend.facts import CellAnalysis, Finding, FunctionInfo, Mutation, Statement
from same_nb.frontend.scopes import COMPREHENSION, DEFERRED, FUNCTION, IN_SCOPE, MODULE, TOP, Scope, mutable_defaults

_NO_SOURCES: frozenset[str] = frozenset()


class StatementWalker(CallWalker):
    """Visits one top-level statement in execution order and returns what it found as a Statement."""

    def __init__(self, result: CellAnalysis, line_map: list[int] | None, offset: int):
        self.result = result
        self.line_map = line_map
        self.offset = offset

    def statement(self, node: ast.stmt) -> Statement:
        decorators = getattr(node, "decorator_list", [])
        self.stmt = Statement(self._line(min((node, *decorators), key=lambda part: part.lineno)))
        self.read_set: set[str] = set()
        self.unguarded: set[str] = set()
        self._start_scopes()
        self.owner: str | None = None     # the top-level def/class/lambda that deferred reads belong to
        self.info: FunctionInfo | None = None
        self.augmented: ast.AST | None = None
        self._next_info: FunctionInfo | None = None
        self.value_aliases: dict[str, set[str]] = {}   # top-level name bound here -> names it may share
        self.pending: dict[int, frozenset[str]] = {}    # id(Name target) -> sources of the value it gets
        # An import inside `if`/`try`/`for`/`with` binds a module only on some runs: the module it bound
        # travels as a value (by name) instead of its import being replayed.
        self._conditional_imports = not isinstance(node, (ast.Import, ast.ImportFrom))
        self.visit(node)
        stmt = self.stmt
        surely = self.scopes[0].bound
        stmt.maybe_binds = [name for name in stmt.binds if name not in surely]
        stmt.guarded = [name for name in stmt.reads if name not in self.unguarded]
        stmt.aliases = {name: sorted(self.value_aliases[name]) for name in stmt.binds if self.value_aliases.get(name)}
        return stmt

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
        elif where != IN_SCOPE and name not in self.scopes[0].bound and name != "get_ipython":
            # get_ipython: IPython's own builtin, and what magics are converted to
            # Bound earlier in this statement on some path (`for i in xs: ...` then `i` after the loop):
            # the read fails only when that path was not taken, so it is not reported as unbound.
            if not self.name_guards and name not in self.stmt.binds:
                self.unguarded.add(name)
            if name not in self.read_set:
                self.read_set.add(name)
                self.stmt.reads.append(name)

    def _bind(self, name: str, scope_index: int = -1, sources: frozenset[str] = _NO_SOURCES) -> None:
        scope = self.scopes[scope_index]
        if scope.kind == MODULE or name in scope.globals:
            if self.functions:  # `global x; x = ...` in a function binds x when the function runs
                self._read(name)
                if self.info is not None and name not in self.info.assigns:
                    self.info.assigns.append(name)
                return
            if name not in self.stmt.binds:
                self.stmt.binds.append(name)
            if (not self._importing or self._conditional_imports) and name not in self.stmt.value_binds:
                self.stmt.value_binds.append(name)
            self._alias(name, sources)
        super()._bind(name, scope_index)

    def _alias(self, name: str, sources: frozenset[str]) -> None:
        expanded = set()
        for source in sources:
            expanded.add(source)
            expanded |= self.value_aliases.get(source, set())
        if name in self.scopes[0].bound:   # `x = []; x += [1]`: x's earlier object is this statement's own
            expanded.discard(name)
        if name not in expanded:   # name now holds another object: nothing here aliases it any more
            for others in self.value_aliases.values():
                others.discard(name)
        self.value_aliases[name] = expanded

    def _sources(self, node: ast.AST | None, elements: bool = False,
                 local: dict[str, set[str]] | None = None) -> frozenset[str]:
        if node is None:
            return _NO_SOURCES

        def resolve(name: str) -> set[str]:
            if local and name in local:
                return local[name]
            where = self._where(name)
            if where == TOP:
                return {name} | self.value_aliases.get(name, set())
            if where == IN_SCOPE:
                scope = self._holder(name)
                return scope.aliases.get(name, set()) if scope is not None else set()
            return set()

        return frozenset(value_sources(node, resolve, elements))

    def _holder(self, name: str) -> Scope | None:
        """The innermost enclosing scope whose own variable ``name`` is."""
        for scope in reversed(self.scopes[1:]):
            if name in scope.locals:
                return scope
        return None

    def _targets(self, name: str) -> list[str]:
        """The names whose objects change when the object ``name`` holds here changes."""
        where = self._where(name)
        surely = self.scopes[0].bound
        if where == TOP:
            own = [] if name in surely else [name]
            return own + sorted(s for s in self.value_aliases.get(name, ()) if s != name and s not in surely)
        if where == IN_SCOPE:
            scope = self._holder(name)
            if scope is not None and scope.kind == COMPREHENSION:
                return sorted(s for s in scope.aliases.get(name, ()) if s not in surely)
        return []

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id)
        elif isinstance(node.ctx, ast.Store):
            self._bind(node.id, sources=self.pending.pop(id(node), _NO_SOURCES))
        else:
            scope = self.scopes[-1]
            if scope.kind == MODULE and node.id not in self.stmt.deletes:
                self.stmt.deletes.append(node.id)
            scope.bound.discard(node.id)

    # -- assignments and in-place changes ---------------------------------------------------
    def _prepare_targets(self, target: ast.AST, value: ast.AST | None, elements: bool = False) -> None:
        """Remember, for each name a target binds, the names whose objects its value may share."""
        if len(self.scopes) > 1:
            return
        for name, part, element in target_values(target, value):
            self.pending[id(name)] = self._sources(part, elements or element)

    def visit_Assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        if isinstance(node, ast.Assign):
            targets = node.targets
        else:  # `x: int` alone binds nothing
            targets = [node.target] if node.value is not None else []
        names = [target.id for target in targets if isinstance(target, ast.Name)]
        top = len(self.scopes) == 1 and not self.functions and self.owner is None
        if top and isinstance(node.value, ast.Lambda) and names and len(names) == len(targets):
            self._define_lambda(names, node.value)
        elif node.value is not None:
            self.visit(node.value)
        if isinstance(node, ast.AnnAssign):
            self.visit(node.annotation)
        for target in targets:
            self._prepare_targets(target, node.value)
            self.visit(target)
        if top and names:
            self._record_value(names, node.value)

    visit_AnnAssign = visit_Assign

    def _record_value(self, names: list[str], value: ast.AST) -> None:
        stmt = self.stmt
        wraps, callee, same = wrapped(value), called(value), same_object(value)
        rename = value.id if isinstance(value, ast.Name) else None
        mutator = isinstance(value, ast.Attribute) and value.attr in MUTATING_METHODS
        fixed = immutable(value)
        for name in names:
            identical = [same] if same is not None and same != name else []
            if len(names) > 1 and not fixed:   # `a = b = []`: one object under every name
                others = [other for other in names if other != name]
                self.value_aliases[name] |= set(others)
                identical += others
            if identical:
                stmt.identical[name] = identical
            if fixed:
                stmt.immutable.append(name)
            elif isinstance(value, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
                held = self._sources(value, elements=True) - {name}
                if held:
                    stmt.holds[name] = sorted(held)
            if rename is not None and rename != name:
                stmt.renames[name] = rename
            if wraps is not None:
                stmt.wraps[name] = wraps
            if callee is not None:
                stmt.calls[name] = callee
            if mutator:
                stmt.mutators.append(name)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            name = node.target.id
            self._read(name)
            self.visit(node.value)
            if self.functions:   # `acc += [x]` changes a list parameter in place
                self._owner_parameter(name)
            elif self._where(name) == TOP and name not in self.stmt.inplace:
                self.stmt.inplace.append(name)
            self._bind(name, sources=frozenset({name}))
            return
        self.augmented = node.target
        self.visit(node.target)
        self.visit(node.value)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._prepare_targets(node.target, node.iter, elements=True)
        self._branches([node.target, *node.body], node.orelse)

    visit_AsyncFor = visit_For

    def visit_withitem(self, node: ast.withitem) -> None:
        self.visit(node.context_expr)
        if node.optional_vars is not None:
            self._prepare_targets(node.optional_vars, node.context_expr)
            self.visit(node.optional_vars)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        index = len(self.scopes) - 1
        while self.scopes[index].kind == COMPREHENSION:  # walrus binds in the enclosing scope
            index -= 1
        self._bind(node.target.id, index, self._sources(node.value) if index == 0 else _NO_SOURCES)

    def _comprehension_aliases(self, generators: list[ast.comprehension]) -> dict[str, set[str]]:
        aliases: dict[str, set[str]] = {}
        for generator in generators:
            sources = set(self._sources(generator.iter, elements=True, local=aliases))
            for name in ast.walk(generator.target):
                if isinstance(name, ast.Name):
                    aliases[name.id] = sources
        return aliases

    def visit_Subscript(self, node: ast.Subscript | ast.Attribute) -> None:
        self.generic_visit(node)
        kind = "item" if isinstance(node, ast.Subscript) else "attribute"
        if node is self.augmented:
            self._mutation(node, "augmented assignment", slot=True)
        elif isinstance(node.ctx, ast.Store):
            self._mutation(node, f"{kind} assignment", slot=True)
        elif isinstance(node.ctx, ast.Del):
            self._mutation(node, f"del {kind}", slot=True)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "__subclasses__" and isinstance(node.value, ast.Name):
            self.stmt.subclass_queries.append(node.value.id)
        self.visit_Subscript(node)

    def _mutation(self, node: ast.AST, how: str, slot: bool = False) -> None:
        """``node`` is the changed object, or with ``slot`` the item or attribute of it that is replaced."""
        name = mutation_root(node)
        if name is None:
            return
        if self.functions:   # runs when called: a global or a parameter of the function changes
            if self.info is not None and self._where(name) == DEFERRED:
                if name not in self.info.mutates:
                    self.info.mutates.append(name)
            else:
                self._owner_parameter(name)
            return
        line = self._line(node)
        inner = node.value if slot and isinstance(node, (ast.Subscript, ast.Attribute)) else node
        shallow = isinstance(inner, ast.Name)
        self.stmt.mutations.extend(Mutation(target, line, how, deep=target != name or not shallow)
                                   for target in self._targets(name))

    def _owner_parameter(self, name: str) -> None:
        """Record that the top-level function changes its own parameter ``name`` (if it is one)."""
        if self.info is None or len(self.scopes) < 2 or self._holder(name) is not self.scopes[1]:
            return
        scope = self.scopes[1]
        if scope.kind == FUNCTION and name in scope.params:
            if name not in self.info.mutated_params:
                self.info.mutated_params.append(name)
            self.info.stateful = self.info.stateful or name in scope.mutable_params

    # -- functions and classes --------------------------------------------------------------
    def _own(self, name: str, info: FunctionInfo) -> bool:
        """Make a top-level definition the owner of the deferred reads and effects in its body."""
        if self.owner is not None or len(self.scopes) > 1:
            return False
        self.owner, self.info = name, info
        self.nested: set[str] = set()
        self.keeps_state = False
        self.stmt.defines.setdefault(name, [])
        self.stmt.functions[name] = info
        return True

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.info is not None:
            self.nested.add(node.name)
        caches = caches_results(node.decorator_list)
        self._next_info = FunctionInfo(params=[arg.arg for arg in (*node.args.posonlyargs, *node.args.args)],
                                       stateful=caches, caches=caches)
        super().visit_FunctionDef(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if self.info is not None:
            self.nested.add(node.name)
        self._next_info = FunctionInfo(factory=True, is_class=True)   # its instances run its methods later
        if len(self.scopes) == 1:
            self.stmt.bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
        super().visit_ClassDef(node)

    def _define(self, name: str, scope: Scope, body: list[ast.stmt]) -> None:
        info, self._next_info = self._next_info, None
        owned = info is not None and self._own(name, info)
        super()._define(name, scope, body)
        if owned:
            self._disown()

    def _disown(self) -> None:
        info = self.info
        info.stateful_results = info.factory and self.keeps_state
        self.owner = self.info = None

    # A call returns something that runs the function's code later when it returns a lambda or a function
    # defined inside it, or is a generator; with `nonlocal`, that keeps state between its own calls.
    def visit_Return(self, node: ast.Return | ast.Yield | ast.YieldFrom) -> None:
        if self.info is not None and not self.info.factory:
            self.info.factory = not isinstance(node, ast.Return) or returns_code(node.value, self.nested)
        self.generic_visit(node)

    visit_Yield = visit_YieldFrom = visit_Return

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.keeps_state = True

    def _define_lambda(self, names: list[str], node: ast.Lambda) -> None:
        """`f = lambda: k` reads k when f is called, like a def: the read is deferred to the callers."""
        info = FunctionInfo(params=[arg.arg for arg in (*node.args.posonlyargs, *node.args.args)])
        self._visit_signature(node.args)
        self._own(names[0], info)
        info.factory = returns_code(node.body, set())
        self._in_scope(self._function_scope([node.body], node.args, mutable_defaults(node.args)), [node.body])
        self._disown()
        for other in names[1:]:
            self.stmt.defines[other] = self.stmt.defines[names[0]]
            self.stmt.functions[other] = info
