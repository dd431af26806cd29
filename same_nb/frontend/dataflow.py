"""Resolve what each step reads and writes, walking statements in notebook order.

A name a step reads before binding it resolves to the latest earlier binding: a variable from the
step that last produced it (data edge), an import (replayed, not data; `lib = np` too), or a parameter.
Functions, classes, assigned lambdas, partials and closures travel by value; the globals their code
reads become inputs of every step that uses them, and what their code changes (globals, their own
state, arguments) is changed by every step that uses them.
A step that changes a value it received (variable or parameter), directly, through another name for
the same object, or by calling such code, becomes that value's producer for later steps. A step that
binds a name on only some paths takes the earlier value as an input when someone reads the name after
it, so the earlier value passes through when the binding does not happen. One that `del`s an earlier
step's name needs it as an input, since `del` needs it bound.
"""
from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field, replace

from same_nb.frontend.aliases import import_alias
from same_nb.frontend.bindings import Binding, Shared, Unresolved, carry
from same_nb.frontend.facts import CellAnalysis, Statement
from same_nb.frontend.flowdiagnostics import MUTABLE_PARAMETER_TYPES, finish
from same_nb.frontend.grouping import StepDraft
from same_nb.frontend.ir import Diagnostic, Import, Input
from same_nb.frontend.notebook import NotebookCell
from same_nb.frontend.sharing import HOLDS, PART, SAME, Reached, SharedObjects

# Names the IPython kernel provides in every namespace.
KERNEL_NAMES = frozenset(dir(builtins)) | {
    "get_ipython", "display", "In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh", "_dh",
    "exit", "quit", "__name__", "__doc__", "__builtins__", "__spec__", "__loader__", "__package__",
}
# IPython's output and input history: `_`, `__`, `___`, `_5`, `Out`, `In`, `_i`, `_i5`, ...
OUTPUT_HISTORY = re.compile(r"_{1,3}|_\d+|_i{1,3}|_i\d+|_ih|_oh|In|Out")


@dataclass
class StepFlow:
    name: str
    inputs: dict[str, Input] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    replay: dict[str, Import] = field(default_factory=dict)      # keyed by statement
    params: list[str] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)
    watch: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)


def _import_of(info, cell: NotebookCell) -> Import:
    return Import(module=info.module, top=info.top, statement=info.statement, names=list(info.names),
                  cell=cell.number, line=info.line)


class DataFlow:
    """One pass over all steps. ``run`` returns per-step flows and diagnostics."""

    def __init__(self, params: dict[str, str], prelude_names: set[str]):
        self.params = params                         # name -> type of its default
        self.prelude = prelude_names
        self.latest: dict[str, Binding] = {}
        self.flows: list[StepFlow] = []
        self.by_name: dict[str, StepFlow] = {}
        self.diagnostics: list[Diagnostic] = []
        self.unresolved: list[Unresolved] = []
        self.history: list[tuple[str, str, NotebookCell, int]] = []   # step, name, cell, line
        self.shared_changes: list[Shared] = []
        self.all_bound: dict[str, str] = {}          # name -> first step binding it
        self.star_import_seen = False
        self.star_imports: list[tuple[str, Import]] = []   # (step, import) in notebook order
        self.deleted: dict[str, str] = {}                  # name -> step that `del`eted it last
        self.shared = SharedObjects()
        self.fallbacks: dict[str, Binding] = {}            # this step's names bound on some paths only
        # cached function -> (its token, the step whose calls filled its cache, the globals it read then)
        self.cache_fills: dict[str, tuple[object, str, dict]] = {}
        self.subclasses: dict[str, set[tuple[str, str]]] = {}   # class -> {(subclass, step defining it)}

    def run(self, steps: list[StepDraft], analyses: dict[str, CellAnalysis]) -> list[StepFlow]:
        for draft in steps:
            for cell in draft.cells:
                a = analyses.get(cell.id)
                for st in (a.statements if a else ()):
                    for n in st.binds:
                        self.all_bound.setdefault(n, draft.name)
        for draft in steps:
            self._step(draft, analyses)
        finish(self)
        return self.flows

    # -- one step -------------------------------------------------------------------------------
    def _step(self, draft: StepDraft, analyses: dict[str, CellAnalysis]) -> None:
        flow = StepFlow(name=draft.name)
        self.flows.append(flow)
        self.by_name[flow.name] = flow
        self.fallbacks = {}
        bound: set[str] = set(self.prelude)
        binds_here = {n for c in draft.cells if (a := analyses.get(c.id)) for st in a.statements
                      for n in st.binds}
        for cell in draft.cells:
            a = analyses.get(cell.id)
            if a is None:
                continue
            flow.requirements.extend(spec for _, spec in a.requirements)
            if any(f.code == "star-import" for f in a.findings):
                self.star_import_seen = True
            for st in a.statements:
                _Statement(self, flow, st, cell, bound, binds_here).run()

    def closure(self, name: str) -> list[str]:
        """Names whose code a use of ``name`` may run, transitively, and the globals that code reads."""
        b = self.latest.get(name)
        if b is None or not (b.deferred or b.maker):
            return []
        seen, order, todo = {name}, [], self._code_of(b)
        while todo:
            g = todo.pop(0)
            if g in seen:
                continue
            seen.add(g)
            order.append(g)
            gb = self.latest.get(g)
            if gb is not None and (gb.deferred or gb.maker):
                todo.extend(self._code_of(gb))
        return order

    def _code_of(self, b: Binding) -> list[str]:
        names = list(b.deferred)
        if b.maker is not None:
            cls, made_with = b.maker
            now = self.latest.get(cls)
            if now is not None and now is not made_with and now.token is made_with.token:
                names.append(cls)   # the class was changed in place since: its instances see the change
        return names

    def earlier(self, name: str) -> Binding | None:
        b = self.latest.get(name)
        if b is None and name in self.params and name not in self.deleted:
            return Binding(None, "param")
        return b

    def take(self, flow: StepFlow, name: str, b: Binding) -> None:
        """Make ``flow`` receive ``name`` as ``b`` bound it."""
        if b.kind == "import":
            flow.replay.setdefault(b.imp.statement, b.imp)
        elif b.kind == "param":
            if name not in flow.inputs:
                flow.inputs[name] = Input(name=name, kind="parameter")
                flow.params.append(name)
        elif name not in flow.inputs and b.step != flow.name:
            flow.inputs[name] = Input(name=name, kind="variable", producer=b.step)
            self.need_fallback(name, b)

    def need_fallback(self, name: str, b: Binding) -> None:
        """A step bound ``name`` on some paths only and a later step reads it: the step takes the earlier
        value as an input, so that value passes through when the binding does not happen."""
        if b.fallback is not None and not b.fallback_taken:
            b.fallback_taken = True
            self.take(self.by_name[b.step], name, b.fallback)


class _Statement:
    """What one statement does to the data flow, in execution order: reads, uses of code, in-place
    changes, imports, bindings, aliases, deletions."""

    def __init__(self, df: DataFlow, flow: StepFlow, st: Statement, cell: NotebookCell, bound: set[str],
                 binds_here: set[str]):
        self.df, self.flow, self.st, self.cell, self.bound, self.binds_here = df, flow, st, cell, bound, binds_here

    def run(self) -> None:
        df, st = self.df, self.st
        guarded = st.guarded
        uses = []
        for name in st.reads:
            self.resolve(name, st.line, guarded=name in guarded)
            closure = df.closure(name)
            for g in closure:
                self.resolve(g, st.line, deferred=True)
            b = df.latest.get(name)
            if b is not None and (closure or b.runs_code):
                uses.append((name, closure))
        for name, closure in uses:
            self.use(name, closure)
        for cls, bases in st.bases.items():
            df.subclasses.setdefault(cls, set())
            for base in bases:
                df.subclasses.setdefault(base, set()).add((cls, self.flow.name))
        for base in st.subclass_queries:
            self.subclass_query(base)
        for m in st.mutations:
            self.change(m.name, m.line, m.deep)
        for call in st.opaque_calls:
            if self.mutates_argument(call):
                self.change(call.name, call.line)
        for name in st.inplace:     # `x += ...` changes a mutable x in place, and so every name sharing it
            if not (name in df.latest and df.latest[name].immutable):
                for reached in df.shared.reach(name, self.flow.name, False):
                    self.change_one(reached.name, st.line, name, reached)
        imports_by_name = {}
        for info in st.imports:
            imp = _import_of(info, self.cell)
            self.flow.imports.append(imp)
            if not info.nested:
                imports_by_name.update({n: imp for n in info.names})
                if info.statement.endswith(" import *"):
                    df.star_imports.append((self.flow.name, imp))
        for name in st.binds:
            self.bind(name, imports_by_name)
        for name, sources in st.aliases.items():
            if df.latest.get(name) is not None and df.latest[name].immutable:
                continue
            identical = st.identical.get(name, ())
            for source in sources:
                if source != name and not (source in df.latest and df.latest[source].immutable):
                    df.shared.link(name, source, self.flow.name, SAME if source in identical else PART)
        for name, held in st.holds.items():
            for element in held:
                if not (element in df.latest and df.latest[element].immutable):
                    df.shared.link(name, element, self.flow.name, HOLDS)
        for name in st.deletes:
            if name not in self.bound:   # `del` needs the name to exist: one from an earlier step is an input
                self.resolve(name, st.line)
            self.bound.discard(name)
            df.latest.pop(name, None)
            df.fallbacks.pop(name, None)
            df.shared.drop(name)
            df.deleted[name] = self.flow.name

    # -- reads ----------------------------------------------------------------------------------
    def resolve(self, name: str, line: int, *, deferred: bool = False, guarded: bool = False) -> None:
        df, flow = self.df, self.flow
        if name in df.fallbacks:
            df.take(flow, name, df.fallbacks.pop(name))
            return
        if name in self.bound or name in flow.inputs:
            return
        b = df.latest.get(name)
        if b is not None:
            if b.step != flow.name:     # a step never takes its own binding as an input
                df.take(flow, name, b)
            return
        if name in df.params:
            df.take(flow, name, Binding(None, "param"))
            return
        if OUTPUT_HISTORY.fullmatch(name):
            df.history.append((flow.name, name, self.cell, line))
            return
        if name in KERNEL_NAMES or (deferred and name in self.binds_here):
            return
        if df.star_imports and name not in df.deleted:
            # The name may come from an earlier `from m import *`: replay those (each is warned about).
            for step, imp in df.star_imports:
                if step != flow.name:
                    flow.replay.setdefault(imp.statement, imp)
            return
        df.unresolved.append(Unresolved(name, flow.name, self.cell, line, df.deleted.get(name), guarded))

    # -- uses of code ---------------------------------------------------------------------------
    def use(self, name: str, closure: list[str]) -> None:
        """Using a function, class, instance or closure may run its code: do what that code changes."""
        df = self.df
        for member in (name, *closure):
            b = df.latest.get(member)
            if b is None or not b.runs_code:
                continue
            if b.info is not None and b.info.caches:
                self.cached_call(member, b)
            if b.stateful or (b.info is not None and b.info.stateful):
                self.change(member, self.st.line)
            if b.info is not None:
                for g in b.info.mutates:
                    self.change(g, self.st.line)
                for g in b.info.assigns:
                    self.assign(g)

    def subclass_query(self, base: str) -> None:
        """`Base.__subclasses__()` lists the subclasses present in this step's kernel, not the notebook's."""
        found, todo = [], [base]
        while todo:
            for cls, step in sorted(self.df.subclasses.get(todo.pop(), ())):
                found.append((cls, step))
                todo.append(cls)
        elsewhere = [f"{cls!r} (step {step!r})" for cls, step in found if step != self.flow.name]
        if not elsewhere:
            return
        self.df.diagnostics.append(Diagnostic(
            "error", f"`{base}.__subclasses__()` lists the subclasses defined in this step's kernel; "
            f"{', '.join(elsewhere)} {'is' if len(elsewhere) == 1 else 'are'} defined in another step, so the "
            f"list would miss {'it' if len(elsewhere) == 1 else 'them'} where a top-to-bottom run has "
            f"{'it' if len(elsewhere) == 1 else 'them'}. Define the subclasses in this step, or keep an explicit "
            f"registry (a list the classes are added to) and read that.", code="subclasses-across-steps",
            step=self.flow.name, cell=self.cell.number, cell_id=self.cell.id, line=self.st.line))

    def cached_call(self, name: str, b: Binding) -> None:
        """A cache filled in one step is empty in the next one's kernel: refuse when that can change a
        result, i.e. a global the function reads was rebound or changed since the step that filled it."""
        df, here = self.df, self.flow.name
        reads = df.closure(name)
        filled = df.cache_fills.get(name)
        if filled is None or filled[0] is not b.token:
            df.cache_fills[name] = (b.token, here, {g: df.latest.get(g) for g in reads})
            return
        _, step, seen = filled
        changed = [g for g in reads if g in seen and df.latest.get(g) is not seen[g]]
        if step == here or not changed:
            return
        df.diagnostics.append(Diagnostic(
            "error", f"{name!r} caches its results (`@lru_cache`/`@cache`), and step {step!r} filled the cache; "
            f"a top-to-bottom run returns those remembered results here, but this step's kernel starts with an "
            f"empty cache and would recompute with the new {', '.join(repr(g) for g in changed)}. Pass "
            f"{', '.join(changed)} as arguments (so they are part of the cache key), drop the cache, or call "
            f"{name!r} in one step.", code="cache-across-steps", step=here, cell=self.cell.number,
            cell_id=self.cell.id, line=self.st.line))

    def mutates_argument(self, call) -> bool:
        b = self.df.latest.get(call.callee)
        info = b.info if b is not None else None
        if info is None or not info.mutated_params:
            return False
        if call.arg is None:
            return True
        if isinstance(call.arg, int):
            return call.arg < len(info.params) and info.params[call.arg] in info.mutated_params
        return call.arg in info.mutated_params

    # -- in-place changes -----------------------------------------------------------------------
    def change(self, name: str, line: int, deep: bool = True) -> None:
        self.change_one(name, line, name, None)
        for reached in self.df.shared.reach(name, self.flow.name, deep):
            self.change_one(reached.name, line, name, reached)

    def change_one(self, name: str, line: int, via: str, reached: Reached | None) -> None:
        df, flow = self.df, self.flow
        # A name bound here on some paths may still hold the earlier value: a direct change reaches it, a
        # change through another name reaches only what this step bound it to.
        if name in self.bound and (name not in df.fallbacks or reached is not None):
            return
        if name in df.latest and df.latest[name].immutable:
            return
        self.resolve(name, line)
        inp = flow.inputs.get(name)
        if inp is None or (inp.kind == "parameter" and df.params[name] not in MUTABLE_PARAMETER_TYPES):
            return   # not received, or an int/float/str/bool/None parameter, which cannot change in place
        # The step changes an object it received: later readers must get this version, which still
        # carries what the earlier binding knew about its code.
        prev = df.latest.get(name)
        df.latest[name] = (replace(prev, step=flow.name, fallback=None, fallback_taken=False) if prev is not None
                           else Binding(flow.name, "data"))
        if reached is not None and reached.linked is not None:
            df.shared_changes.append(Shared(flow.name, name, via, reached.linked, reached.certain, self.cell, line))

    def assign(self, name: str) -> None:
        """A function the step calls rebinds the global ``name`` (`global name`), on some paths."""
        df = self.df
        if name in self.bound:
            return
        fallback = df.earlier(name)
        df.latest[name] = Binding(self.flow.name, "data", fallback=fallback)
        if fallback is not None:
            df.fallbacks[name] = fallback
        self.bound.add(name)
        df.deleted.pop(name, None)

    # -- bindings -------------------------------------------------------------------------------
    def bind(self, name: str, imports_by_name: dict[str, Import]) -> None:
        df, flow, st = self.df, self.flow, self.st
        prev = df.latest.get(name)
        fallback = None
        if name in st.maybe_binds:
            if name not in self.bound:
                fallback = df.earlier(name)
            elif prev is not None and prev.step == flow.name:
                fallback = prev.fallback
        if fallback is not None:
            df.fallbacks[name] = fallback
        else:
            df.fallbacks.pop(name, None)
        if name in imports_by_name and name not in st.value_binds:
            b = Binding(flow.name, "import", imp=imports_by_name[name])
        elif name in st.defines:
            b = Binding(flow.name, "def", deferred=list(st.defines[name]), info=st.functions.get(name))
            flow.definitions.append(name)
        else:
            b = self.value_binding(name, prev)
        b.fallback = fallback
        b.immutable = b.immutable and fallback is None   # the earlier value may be what the name holds
        self.bound.add(name)
        df.deleted.pop(name, None)
        df.latest[name] = b
        if name not in st.maybe_binds and name not in st.aliases.get(name, ()):
            df.shared.drop(name)

    def value_binding(self, name: str, prev: Binding | None) -> Binding:
        df, st = self.df, self.st
        b = Binding(self.flow.name, "data", stateful=name in st.mutators, immutable=name in st.immutable)
        source = st.renames.get(name)
        origin = df.latest.get(source) if source is not None else None
        if origin is not None and origin.immutable:
            b.immutable = True
        if origin is not None and origin.kind == "import":   # `lib = np` is replayed like an import
            imp = import_alias(origin.imp, source, name, self.cell.number, st.line)
            if imp is not None:
                return Binding(self.flow.name, "import", imp=imp)
        for wrapped in (source, st.wraps.get(name)):
            origin = df.latest.get(wrapped) if wrapped is not None else None
            if origin is not None and origin.runs_code:   # `g2 = g`, `partial(g, ...)`: runs g's code later
                carry(b, origin, origin.stateful)
        callee = st.calls.get(name)
        origin = df.latest.get(callee) if callee is not None else None
        if origin is not None and origin.info is not None and origin.info.factory:
            # An instance, closure or generator holds its maker's code: it reads the maker's globals
            # when used, not the maker itself (but an instance sees its class changed in place).
            carry(b, origin, origin.info.stateful_results)
            if origin.info.is_class:
                b.maker = (callee, origin)
        if prev is not None and name in st.aliases.get(name, ()) and prev.runs_code:
            carry(b, prev, prev.stateful)
        return b

