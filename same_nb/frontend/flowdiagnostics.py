"""What the data flow reports once every step is resolved, and which inputs the runtime watches.

Runs after the walk over all steps, when it is known which later steps read each value:
- names read before they are bound, after a `del`, or nowhere bound (not when guarded by
  `except NameError`, which is how a notebook asks "is it defined?");
- reads of IPython's output history, which a step's own kernel does not have;
- in-place changes that reach another name only through a link made in an earlier step;
- ``watch``: every input (and list/dict parameter) a later step also reads at the same version, so
  the runtime can check that the step left it unchanged.
"""
from __future__ import annotations

from same_nb.frontend.ir import Diagnostic

MUTABLE_PARAMETER_TYPES = frozenset({"list", "dict"})


def finish(df) -> None:
    """Add ``df``'s (a ``dataflow.DataFlow`` after its walk) diagnostics and fill each flow's ``watch``."""
    readers = _readers(df)
    _unresolved(df)
    _history(df)
    _shared(df, readers)
    _watch(df, readers)


def _readers(df) -> dict[tuple[str | None, str], list[int]]:
    """Steps (by position) that read each value, keyed by (producer step, name); a parameter's producer is None."""
    readers: dict[tuple[str | None, str], list[int]] = {}
    for i, f in enumerate(df.flows):
        for inp in f.inputs.values():
            readers.setdefault((inp.producer, inp.name), []).append(i)
    return readers


def _read_later(readers: dict, producer: str | None, name: str, position: int) -> bool:
    positions = readers.get((producer, name), [])
    return bool(positions) and positions[-1] > position


def _diagnostic(message: str, code: str, step: str, cell, line: int, severity: str = "warning") -> Diagnostic:
    return Diagnostic(severity, message, code=code, step=step, cell=cell.number, cell_id=cell.id, line=line)


def _unresolved(df) -> None:
    reported: set[tuple[str, str]] = set()
    for u in df.unresolved:
        if u.guarded or (u.step, u.name) in reported:
            continue
        reported.add((u.step, u.name))
        later = df.all_bound.get(u.name)
        if u.deleted_in is not None:
            where = "in this step" if u.deleted_in == u.step else f"in step {u.deleted_in!r}"
            msg = f"{u.name!r} is read after `del {u.name}` {where}; a top-to-bottom run would fail here too"
            code = "read-after-del"
        elif later is not None:
            where = "later in this step" if later == u.step else f"in step {later!r}"
            msg = (f"{u.name!r} is read before it is defined (it is first defined {where}); "
                   "a top-to-bottom run would fail here too")
            code = "read-before-definition"
        elif df.star_import_seen:
            continue
        else:
            msg = f"{u.name!r} is not defined anywhere in the notebook, nor a parameter or builtin"
            code = "undefined-name"
        df.diagnostics.append(_diagnostic(msg, code, u.step, u.cell, u.line))


def _history(df) -> None:
    reported: set[tuple[str, str]] = set()
    for step, name, cell, line in df.history:
        if (step, name) in reported:
            continue
        reported.add((step, name))
        df.diagnostics.append(_diagnostic(
            f"{name!r} is IPython's output history, which a pipeline does not have: each step runs in its own "
            f"kernel, so {name!r} is not what a top-to-bottom run gives. Assign the value to a variable and "
            "read that instead", "output-history", step, cell, line,
            severity="error"))            # the pipeline cannot compute what the notebook does: refuse


def _shared(df, readers: dict) -> None:
    """A change that reaches another name only across steps: certain links (`b = a` in an earlier step)
    are errors, since the run would silently differ; possible ones (views, elements) are warnings."""
    order = {f.name: i for i, f in enumerate(df.flows)}
    reported: set[tuple[str, str]] = set()
    for s in df.shared_changes:
        if (s.step, s.name) in reported or not _read_later(readers, s.step, s.name, order[s.step]):
            continue
        reported.add((s.step, s.name))
        how = "changes" if s.certain else "may change"
        df.diagnostics.append(Diagnostic(
            "error" if s.certain else "warning",
            f"this step {how} {s.name!r} through {s.via!r}, which has shared its object since step "
            f"{s.linked!r}; but each step receives its own copy of its inputs, so here {s.via!r} is a separate "
            f"copy and later steps reading {s.name!r} would not see the change. Change {s.name!r} itself here, "
            f"or make {s.via!r} from {s.name!r} again in this step", code="shared-object", step=s.step,
            cell=s.cell.number, cell_id=s.cell.id, line=s.line))


def _watch(df, readers: dict) -> None:
    for i, f in enumerate(df.flows):
        for inp in f.inputs.values():
            if inp.kind == "parameter" and df.params.get(inp.name) not in MUTABLE_PARAMETER_TYPES:
                continue   # an int/float/str/bool/None parameter cannot change in place
            if _read_later(readers, inp.producer, inp.name, i) and inp.name not in f.watch:
                f.watch.append(inp.name)
