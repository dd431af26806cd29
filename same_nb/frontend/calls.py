"""The cell walker's imports and calls: what an import binds, and what a call changes, reads or hides.

A mixin of the statement walker (``walker.StatementWalker``), which provides ``stmt``, ``result``,
``_line``, ``_finding``, ``_read``, ``_bind``, ``_mutation`` and ``_targets``.
"""
from __future__ import annotations

import ast
import importlib.util
import keyword
import re

from same_nb.frontend import magics
from same_nb.frontend.aliases import dotted, root_name
from same_nb.frontend.callees import MUTATING_METHODS, mutated_argument, reads_arguments_only
from same_nb.frontend.facts import Finding, ImportInfo, OpaqueCall
from same_nb.frontend.scopes import MODULE, ScopeWalker

_DYNAMIC_IMPORTERS = frozenset({"importlib.import_module", "import_module", "__import__"})
# `df.query("a > @limit")` reads the variable limit; `@` after a word character is an operator.
_QUERY_VARIABLE = re.compile(r"(?<![\w@])@([A-Za-z_]\w*)")


class CallWalker(ScopeWalker):
    _importing = False      # binding the names of an import statement, not assigning values
    _conditional_imports = False
    # -- imports ----------------------------------------------------------------------------
    def _import(self, node: ast.AST, module: str, top: str, statement: str, names: list[str],
                dynamic: bool = False) -> None:
        nested = len(self.scopes) > 1
        self.stmt.imports.append(ImportInfo(module, top, statement, [] if nested or dynamic else names,
                                            self._line(node), dynamic=dynamic, nested=nested))
        self._importing = True
        try:
            for name in names:
                self._bind(name)
        finally:
            self._importing = False

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
        callee = dotted(func)
        if callee in ("exec", "eval"):
            self._finding(node, callee, f"{callee}() runs code the analysis cannot see; what it reads and binds "
                          "is not tracked")
        elif callee == "globals" or (callee in ("locals", "vars") and not node.args
                                     and self.scopes[-1].kind == MODULE):
            self._finding(node, "globals", f"{callee}() exposes the notebook's variables; reads and writes "
                          "through it are not tracked")
        elif callee in _DYNAMIC_IMPORTERS:
            self._dynamic_import(node, callee)
        elif isinstance(func, ast.Attribute) and func.attr in ("query", "eval"):
            self._query_variables(node)
        self._call_effects(node, callee)

    def _query_variables(self, node: ast.Call) -> None:
        for arg in (*node.args[:1], *(kw.value for kw in node.keywords if kw.arg == "expr")):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                for name in _QUERY_VARIABLE.findall(arg.value):
                    self._read(name)

    def _call_effects(self, node: ast.Call, callee: str | None) -> None:
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else None
        if method in MUTATING_METHODS:
            self._mutation(func.value, f"method {method}()")
        elif method is not None and any(kw.arg == "inplace" and not (isinstance(kw.value, ast.Constant)
                                                                     and not kw.value.value)
                                        for kw in node.keywords):
            self._mutation(func.value, "inplace=True")
        elif callee in ("setattr", "delattr") and node.args:
            self._mutation(node.args[0], "attribute assignment" if callee == "setattr" else "del attribute")
            return
        for kw in node.keywords:
            if kw.arg == "out":   # numpy ufuncs and reductions write into `out=`
                self._mutation(kw.value, "out=")
        position = mutated_argument(callee, method)
        if position is not None and position < len(node.args):
            self._mutation(node.args[position], f"{callee or 'method ' + method}()")
        if self.functions or reads_arguments_only(callee, method):
            return
        passed = []
        arguments = [*((arg, None if isinstance(arg, ast.Starred) else index) for index, arg in enumerate(node.args)),
                     *((kw.value, kw.arg) for kw in node.keywords)]
        for arg, where in arguments:
            name = root_name(arg)
            if name is None:
                continue
            for target in self._targets(name):
                if target not in passed:
                    passed.append(target)
                    callee = callee or ast.unparse(func)[:80]
                    self.stmt.opaque_calls.append(OpaqueCall(target, self._line(node), callee, where))

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
