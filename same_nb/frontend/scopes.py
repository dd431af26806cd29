"""Python's scoping rules for the cell walker: where each name resolves and which names are surely bound."""
from __future__ import annotations

import ast

from same_nb.frontend import magics
from same_nb.frontend.callees import MUTABLE_CONSTRUCTORS

# Scope kinds. LOCAL: a lambda or %timeit body, with its own variables but run immediately.
MODULE, CLASS, FUNCTION, COMPREHENSION, LOCAL = "module", "class", "function", "comprehension", "local"
# Where a name resolves: a variable of an enclosing scope, a global read when a function runs, a global read now.
IN_SCOPE, DEFERRED, TOP = "in scope", "deferred", "top"
_LEAVES = (ast.Constant, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_BINDING_NODES = frozenset({ast.Name, ast.Global, ast.Nonlocal, ast.alias, ast.Lambda, ast.FunctionDef,
                            ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler, ast.MatchAs, ast.MatchStar,
                            ast.MatchMapping, *_COMPREHENSIONS})


def _children(node: ast.AST) -> list[ast.AST]:
    nodes = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            nodes.extend(item for item in value if isinstance(item, ast.AST) and not isinstance(item, _LEAVES))
        elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
            nodes.append(value)
    return nodes


def _scope_names(body: list[ast.AST], args: ast.arguments | None) -> tuple[set[str], set[str]]:
    """The names local to a function/lambda body (Python decides this statically), and its `global` names."""
    local_names: set[str] = set()
    global_names: set[str] = set()
    if args is not None:
        local_names.update(arg.arg for arg in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs,
                                               args.kwarg) if arg is not None)
    stack = list(body)
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind not in _BINDING_NODES:
            stack.extend(_children(node))
        elif kind is ast.Name:
            if type(node.ctx) is not ast.Load:
                local_names.add(node.id)
        elif kind in _COMPREHENSIONS:
            # Only walrus targets inside bind here; comprehension targets are the comprehension's own.
            stack.extend(part for generator in node.generators for part in (generator.iter, *generator.ifs))
            stack.extend(getattr(node, part) for part in ("elt", "key", "value") if hasattr(node, part))
        elif kind is ast.Global:
            global_names.update(node.names)
        elif kind is ast.Nonlocal:
            local_names.update(node.names)
        elif kind is ast.alias:
            if node.name != "*":
                local_names.add(node.asname or node.name.partition(".")[0])
        elif kind is ast.MatchMapping:
            local_names.add(node.rest or "")
            stack.extend(_children(node))
        elif kind is not ast.Lambda:  # defs, classes, except handlers and match captures bind their name
            local_names.add(node.name or "")
            if kind in (ast.ExceptHandler, ast.MatchAs, ast.MatchStar):
                stack.extend(_children(node))
    local_names.discard("")
    return local_names - global_names, global_names


_NAME_ERROR_CATCHERS = frozenset({"NameError", "UnboundLocalError", "Exception", "BaseException"})


def catches_name_error(handler: ast.ExceptHandler) -> bool:
    """Whether `except ...:` catches the NameError a read of an unbound name raises."""
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((t.id if isinstance(t, ast.Name) else getattr(t, "attr", None)) in _NAME_ERROR_CATCHERS
               for t in types)


def _suppresses(item: ast.withitem) -> bool:
    """`with contextlib.suppress(...)`: the body may stop at any statement, and the code after it runs."""
    call = item.context_expr
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) == "suppress"


_MUTABLE_LITERALS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def mutable_defaults(args: ast.arguments) -> set[str]:
    """Parameters whose default is a fresh mutable object: one object shared by every call."""
    positional = [*args.posonlyargs, *args.args]
    pairs = [*zip(positional[len(positional) - len(args.defaults):], args.defaults),
             *zip(args.kwonlyargs, args.kw_defaults)]
    names = set()
    for arg, default in pairs:
        if isinstance(default, ast.Call):
            func = default.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if callee in MUTABLE_CONSTRUCTORS:
                names.add(arg.arg)
        elif isinstance(default, _MUTABLE_LITERALS):
            names.add(arg.arg)
    return names


class Scope:
    __slots__ = ("kind", "locals", "globals", "bound", "params", "mutable_params", "aliases")

    def __init__(self, kind: str, local_names: set[str] = frozenset(), global_names: set[str] = frozenset()):
        self.kind = kind
        self.locals = local_names
        self.globals = global_names
        self.bound: set[str] = set()  # module and class scopes: names surely bound so far in this statement
        self.params: tuple[str, ...] = ()           # functions: parameter names, positional ones first
        self.mutable_params: frozenset[str] = frozenset()   # parameters whose default is a mutable object
        self.aliases: dict[str, set[str]] = {}      # comprehensions: variable -> top-level names it iterates


class ScopeWalker(ast.NodeVisitor):
    """Visits one statement in execution order, keeping the scopes its code runs in and the names surely bound.

    Subclasses get every name read (`_read`) and bound (`_bind`), and ask `_where` a name resolves.
    """

    def _start_scopes(self) -> None:
        self.scopes = [Scope(MODULE)]
        self.functions = 0                # open function scopes: code in them runs later, when called
        self.name_guards = 0              # open `try:` bodies whose handlers catch NameError

    # NodeVisitor's own dispatch dominated the run time; this one skips leaves that hold no names.
    def visit(self, node: ast.AST) -> None:
        getattr(self, "visit_" + node.__class__.__name__, self.generic_visit)(node)

    def generic_visit(self, node: ast.AST) -> None:
        for child in _children(node):
            self.visit(child)

    # -- names ------------------------------------------------------------------------------
    def _where(self, name: str) -> str:
        """IN_SCOPE, DEFERRED or TOP: where a name read at this point of the walk resolves."""
        deferred = False
        innermost = self.scopes[-1]
        for scope in reversed(self.scopes):
            if scope.kind == MODULE:
                break
            deferred = deferred or scope.kind == FUNCTION
            if name in scope.globals:
                break
            if scope.kind == CLASS:  # class variables are invisible to the functions and comprehensions inside
                if scope is innermost and name in scope.bound:
                    return IN_SCOPE
            elif name in scope.locals:
                return IN_SCOPE
        return DEFERRED if deferred else TOP

    def _read(self, name: str) -> None:
        """Called for every name the code loads, in execution order."""
        raise NotImplementedError

    def _bind(self, name: str, scope_index: int = -1) -> None:
        """Track `name` as bound in scopes[scope_index]; subclasses record the binding, then call this."""
        scope = self.scopes[scope_index]
        if scope is self.scopes[-1] and scope.kind in (MODULE, CLASS):
            scope.bound.add(name)

    # -- control flow: a name counts as bound after a branch only if every path binds it ---
    def _branches(self, *branches: list[ast.AST]) -> None:
        scope = self.scopes[-1]
        start, outcomes = scope.bound, []
        for branch in branches:
            scope.bound = set(start)
            for node in branch:
                self.visit(node)
            outcomes.append(scope.bound)
        scope.bound = set.intersection(*outcomes)

    def visit_If(self, node: ast.If | ast.While) -> None:
        self.visit(node.test)
        self._branches(node.body, node.orelse)

    visit_While = visit_If

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        self._branches([node.body], [node.orelse])

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.visit(node.values[0])
        self._branches(node.values[1:], [])

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._branches([node.target, *node.body], node.orelse)

    visit_AsyncFor = visit_For

    def visit_Try(self, node: ast.Try) -> None:
        scope = self.scopes[-1]
        start = set(scope.bound)
        guard = any(catches_name_error(handler) for handler in node.handlers)
        self.name_guards += guard
        for child in node.body:
            self.visit(child)
        self.name_guards -= guard
        for child in node.orelse:
            self.visit(child)
        outcomes = [scope.bound]
        for handler in node.handlers:  # a handler may run after any part of the body
            scope.bound = set(start)
            self.visit(handler)
            outcomes.append(scope.bound)
        scope.bound = set(start)
        for child in node.finalbody:
            self.visit(child)
        scope.bound |= set.intersection(*outcomes)

    visit_TryStar = visit_Try

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name)
        for child in node.body:
            self.visit(child)
        if node.name:  # Python deletes the exception variable when the handler ends
            self.scopes[-1].bound.discard(node.name)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item)
        if any(_suppresses(item) for item in node.items):
            self._branches(node.body, [])
        else:
            for child in node.body:
                self.visit(child)

    visit_AsyncWith = visit_With

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        self._branches(*([case] for case in node.cases), [])

    def visit_MatchAs(self, node: ast.MatchAs | ast.MatchStar | ast.MatchMapping) -> None:
        self.generic_visit(node)
        name = node.rest if isinstance(node, ast.MatchMapping) else node.name
        if name:
            self._bind(name)

    visit_MatchStar = visit_MatchMapping = visit_MatchAs

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        index = len(self.scopes) - 1
        while self.scopes[index].kind == COMPREHENSION:  # walrus binds in the enclosing scope
            index -= 1
        self._bind(node.target.id, index)

    # -- scopes -----------------------------------------------------------------------------
    def _in_scope(self, scope: Scope, nodes: list[ast.AST]) -> None:
        self.scopes.append(scope)
        self.functions += scope.kind == FUNCTION
        for node in nodes:
            self.visit(node)
        self.functions -= scope.kind == FUNCTION
        self.scopes.pop()

    def _define(self, name: str, scope: Scope, body: list[ast.stmt]) -> None:
        """Run a def/class body in its scope, then bind its name."""
        self._in_scope(scope, body)
        self._bind(name)

    def _comprehension(self, node: ast.AST, *results: ast.AST) -> None:
        generators = node.generators
        self.visit(generators[0].iter)  # evaluated in the enclosing scope
        targets = {name.id for generator in generators for name in ast.walk(generator.target)
                   if isinstance(name, ast.Name)}
        parts = [part for index, generator in enumerate(generators)
                 for part in ((generator.iter,) if index else ()) + (generator.target, *generator.ifs)]
        scope = Scope(COMPREHENSION, targets)
        scope.aliases = self._comprehension_aliases(generators)
        self._in_scope(scope, [*parts, *results])

    def _comprehension_aliases(self, generators: list[ast.comprehension]) -> dict[str, set[str]]:
        """Comprehension variable -> the top-level names whose elements it takes; subclasses fill it in."""
        return {}

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, node.elt)

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, node.key, node.value)

    def _visit_signature(self, args: ast.arguments) -> None:
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None:
                self.visit(default)
        for arg in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg):
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_signature(node.args)
        self._in_scope(Scope(LOCAL, *_scope_names([node.body], node.args)), [node.body])

    @staticmethod
    def _function_scope(body: list[ast.AST], args: ast.arguments, mutable: set[str]) -> Scope:
        scope = Scope(FUNCTION, *_scope_names(body, args))
        scope.params = tuple(arg.arg for arg in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs,
                                                 args.kwarg) if arg is not None)
        scope.mutable_params = frozenset(mutable)
        return scope

    def visit_TimeitBlock(self, node: magics.TimeitBlock) -> None:
        self._in_scope(Scope(LOCAL, *_scope_names(node.body, None)), node.body)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._visit_signature(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self._define(node.name, self._function_scope(node.body, node.args, mutable_defaults(node.args)), node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in (*node.decorator_list, *node.bases, *(keyword.value for keyword in node.keywords)):
            self.visit(expression)
        # The class body runs now; only its methods' bodies are deferred.
        self._define(node.name, Scope(CLASS), node.body)
