"""Resolve what each step reads and writes, walking statements in notebook order.

A name a step reads before binding it resolves to the latest earlier binding: a variable from the
step that last produced it (data edge), an import (replayed, not data), or a parameter. Functions
and classes travel by value; the globals they read become inputs of every step that uses them.
A step that changes a value it received (variable or parameter) becomes that value's producer for
later steps; one that `del`s an earlier step's name needs it as an input, since `del` needs it bound.
"""
from __future__ import annotations

import builtins
from bisect import bisect_right
from dataclasses import dataclass, field

from same_nb.frontend.analysis import CellAnalysis, Statement
from same_nb.frontend.grouping import StepDraft
from same_nb.frontend.ir import Diagnostic, Import, Input
from same_nb.frontend.notebook import NotebookCell

MUTABLE_PARAMETER_TYPES = frozenset({"list", "dict"})
# Names the IPython kernel provides in every namespace.
KERNEL_NAMES = frozenset(dir(builtins)) | {
    "get_ipython", "display", "In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh", "_dh",
    "exit", "quit", "__name__", "__doc__", "__builtins__", "__spec__", "__loader__", "__package__",
}


@dataclass
class Binding:
    step: str
    kind: str                         # data | import | def
    imp: Import | None = None
    deferred: list[str] = field(default_factory=list)    # globals a def/class reads when used


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


@dataclass
class _Unresolved:
    name: str
    step: str
    cell: NotebookCell
    line: int
    deleted_in: str | None = None     # the step whose `del` removed the name before this read


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
        self.diagnostics: list[Diagnostic] = []
        self.unresolved: list[_Unresolved] = []
        self.all_bound: dict[str, str] = {}          # name -> first step binding it
        self.opaque: list[tuple[str, str, NotebookCell, int, str]] = []  # step, name, cell, line, callee
        self.star_import_seen = False
        self.star_imports: list[tuple[str, Import]] = []   # (step, import) in notebook order
        self.deleted: dict[str, str] = {}                  # name -> step that `del`eted it last

    def run(self, steps: list[StepDraft], analyses: dict[str, CellAnalysis]) -> list[StepFlow]:
        for draft in steps:
            for cell in draft.cells:
                a = analyses.get(cell.id)
                for st in (a.statements if a else ()):
                    for n in st.binds:
                        self.all_bound.setdefault(n, draft.name)
        for draft in steps:
            self._step(draft, analyses)
        self._finish()
        return self.flows

    # -- one step -------------------------------------------------------------------------------
    def _step(self, draft: StepDraft, analyses: dict[str, CellAnalysis]) -> None:
        flow = StepFlow(name=draft.name)
        self.flows.append(flow)
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
                self._statement(flow, st, cell, bound, binds_here)

    def _statement(self, flow: StepFlow, st: Statement, cell: NotebookCell, bound: set[str],
                   binds_here: set[str]) -> None:
        for name in st.reads:
            self._resolve(flow, name, cell, st.line, bound, binds_here, deferred=False)
            for g in self._closure(name, bound):
                self._resolve(flow, g, cell, st.line, bound, binds_here, deferred=True)
        for m in st.mutations:
            if m.name not in bound:
                self._resolve(flow, m.name, cell, m.line, bound, binds_here, deferred=False)
                if m.name in flow.inputs:
                    # The step changes an object it received (a variable or a parameter): later
                    # readers must get this version. A changed function still carries its globals.
                    prev = self.latest.get(m.name)
                    if prev is not None and prev.kind == "def":
                        self.latest[m.name] = Binding(step=flow.name, kind="def", deferred=list(prev.deferred))
                    else:
                        self.latest[m.name] = Binding(step=flow.name, kind="data")
        for call in st.opaque_calls:
            inp = flow.inputs.get(call.name)
            # An int/float/str/bool/None parameter cannot change in place; a list or dict can.
            if call.name not in bound and inp is not None and (
                    inp.kind == "variable" or self.params[call.name] in MUTABLE_PARAMETER_TYPES):
                self.opaque.append((flow.name, call.name, cell, call.line, call.callee))
        imports_by_name = {}
        for info in st.imports:
            imp = _import_of(info, cell)
            flow.imports.append(imp)
            if not info.nested:
                imports_by_name.update({n: imp for n in info.names})
                if info.statement.endswith(" import *"):
                    self.star_imports.append((flow.name, imp))
        for name in st.binds:
            bound.add(name)
            self.deleted.pop(name, None)
            if name in imports_by_name:
                self.latest[name] = Binding(step=flow.name, kind="import", imp=imports_by_name[name])
            elif name in st.defines:
                self.latest[name] = Binding(step=flow.name, kind="def", deferred=list(st.defines[name]))
                flow.definitions.append(name)
            else:
                self.latest[name] = Binding(step=flow.name, kind="data")
        for name in st.deletes:
            if name not in bound:   # `del` needs the name to exist: one from an earlier step is an input
                self._resolve(flow, name, cell, st.line, bound, binds_here, deferred=False)
            bound.discard(name)
            self.latest.pop(name, None)
            self.deleted[name] = flow.name

    def _closure(self, name: str, bound: set[str]) -> list[str]:
        """Globals read, transitively, by the function or class ``name`` when it is used."""
        b = self.latest.get(name)
        if b is None or b.kind != "def":
            return []
        seen, order, todo = {name}, [], list(b.deferred)
        while todo:
            g = todo.pop(0)
            if g in seen:
                continue
            seen.add(g)
            order.append(g)
            gb = self.latest.get(g)
            if gb is not None and gb.kind == "def":
                todo.extend(gb.deferred)
        return order

    def _resolve(self, flow: StepFlow, name: str, cell: NotebookCell, line: int, bound: set[str],
                 binds_here: set[str], *, deferred: bool) -> None:
        if name in bound or name in flow.inputs:
            return
        b = self.latest.get(name)
        if b is not None:
            if b.step == flow.name:     # a step never takes its own binding as an input
                return
            if b.kind == "import":
                flow.replay.setdefault(b.imp.statement, b.imp)
            else:
                flow.inputs[name] = Input(name=name, kind="variable", producer=b.step)
            return
        if name in self.params:
            flow.inputs[name] = Input(name=name, kind="parameter")
            flow.params.append(name)
            return
        if name in KERNEL_NAMES or (deferred and name in binds_here):
            return
        if self.star_imports and name not in self.deleted:
            # The name may come from an earlier `from m import *`: replay those (each is warned about).
            for step, imp in self.star_imports:
                if step != flow.name:
                    flow.replay.setdefault(imp.statement, imp)
            return
        self.unresolved.append(_Unresolved(name, flow.name, cell, line, self.deleted.get(name)))

    # -- diagnostics ----------------------------------------------------------------------------
    def _finish(self) -> None:
        order = {f.name: i for i, f in enumerate(self.flows)}
        reported: set[tuple[str, str]] = set()
        for u in self.unresolved:
            if (u.step, u.name) in reported:
                continue
            reported.add((u.step, u.name))
            later = self.all_bound.get(u.name)
            if u.deleted_in is not None:
                where = "in this step" if u.deleted_in == u.step else f"in step {u.deleted_in!r}"
                msg = (f"{u.name!r} is read after `del {u.name}` {where}; a top-to-bottom run would fail "
                       "here too")
                code = "read-after-del"
            elif later is not None:
                where = "later in this step" if later == u.step else f"in step {later!r}"
                msg = (f"{u.name!r} is read before it is defined (it is first defined {where}); "
                       "a top-to-bottom run would fail here too")
                code = "read-before-definition"
            elif self.star_import_seen:
                continue
            else:
                msg = f"{u.name!r} is not defined anywhere in the notebook, nor a parameter or builtin"
                code = "undefined-name"
            self.diagnostics.append(Diagnostic("warning", msg, code=code, step=u.step, cell=u.cell.number,
                                               cell_id=u.cell.id, line=u.line))
        # Consumers of one value, by (producer step, name), in notebook order; a parameter's producer is None.
        consumers: dict[tuple[str | None, str], list[int]] = {}
        for i, f in enumerate(self.flows):
            for inp in f.inputs.values():
                consumers.setdefault((inp.producer, inp.name), []).append(i)
        for step, name, cell, line, callee in self.opaque:
            flow = self.flows[order[step]]
            producer = flow.inputs[name].producer
            readers = consumers.get((producer, name), [])
            later = bisect_right(readers, order[step])
            if later == len(readers) or (step, name) in reported:
                continue
            affected = self.flows[readers[later]].name
            reported.add((step, name))
            flow.watch.append(name)
            source = f"from {producer!r}" if producer else "as a parameter"
            self.diagnostics.append(Diagnostic(
                "warning",
                f"{name!r} is passed to {callee}(); if that call changes it in place, step "
                f"{affected!r} will not see the change (it reads {name!r} {source}). "
                f"Assign the result (e.g. `{name} = ...`) to make the change explicit; the runner checks "
                "this at run time", code="opaque-mutation", step=step, cell=cell.number, cell_id=cell.id,
                line=line))
