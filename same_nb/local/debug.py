"""Bind a recorded step run's start into an interactive namespace (``same_nb.load_step``), so its code
can be run again cell by cell with what it saw: its inputs from the content-addressed store (hashes
verified), its parameters, the imports and configuration its prologue replayed, and the random
generator states it continued from.

Not restored: the step's own cells (run them next), files on disk (read as they are now), the
kernel's environment beyond the replayed settings, the prelude cells of Kale notebooks, and
anything a library keeps that no replayed statement sets.
"""
from __future__ import annotations

import os
import reprlib
from dataclasses import dataclass, field
from pathlib import Path

from same_nb.errors import SameError
from same_nb.frontend.ir import STATE_VARIABLES
from same_nb.runtime.artifacts import ArtifactStore
from same_nb.runtime.errors import ArtifactError, CorruptArtifactError
from same_nb.runtime.rebind import rebind
from same_nb.runtime.serializers import load_group, load_value
from same_nb.store.stepload import StepLoad, StepLoadError, resolve

_SHA_SHOWN = 12


@dataclass
class Bound:
    name: str
    type: str
    summary: str                  # shape, length or a short repr
    source: str                   # the producing step, or "parameter"
    sha256: str | None = None


@dataclass
class LoadedStep:
    plan: StepLoad
    bound: list[Bound] = field(default_factory=list)
    replayed: list[str] = field(default_factory=list)    # what of the prologue ran: imports, configuration
    generators: list[str] = field(default_factory=list)  # generator channels continued


def session_notebook(namespace: dict) -> Path | None:
    """The notebook this kernel belongs to, when its front end says: Jupyter's ``__session__`` /
    ``JPY_SESSION_NAME`` (absolute, or relative to the server root), or VS Code's ``__vsc_ipynb_file__``."""
    for value in (namespace.get("__session__"), namespace.get("__vsc_ipynb_file__"),
                  os.environ.get("JPY_SESSION_NAME")):
        if not isinstance(value, str) or not value.endswith(".ipynb"):
            continue
        path = Path(value)
        for candidate in ([path] if path.is_absolute() else [Path.cwd() / path, Path.cwd() / path.name]):
            if candidate.is_file():
                return candidate.resolve()
    return None


def load_into(namespace: dict, step: str, *, run: int | None = None,
              notebook: str | os.PathLike | None = None) -> LoadedStep:
    """Find the step run (see :func:`choose_notebook` for which notebook) and bind it into ``namespace``."""
    from same_nb.store.database import open_store
    from same_nb.store.rows import DB_ENV

    given = None
    if notebook is not None:
        given = Path(notebook).expanduser()
        given = (given if given.is_absolute() else Path.cwd() / given).resolve()
        if given.suffix != ".ipynb":
            raise StepLoadError(f"notebook={str(notebook)!r} is not a notebook (.ipynb) path")
    folder = given.parent if given is not None else Path.cwd()
    if not os.environ.get(DB_ENV) and not (folder / ".same" / "same.db").is_file():
        raise StepLoadError(f"no run store at {folder / '.same' / 'same.db'}: run the pipeline first "
                            f"(same-nb run NOTEBOOK), pass notebook=, or set {DB_ENV}")
    try:
        store = open_store(notebook_dir=folder)
    except SameError as exc:
        raise StepLoadError(str(exc)) from None
    try:
        chosen = given if given is not None else choose_notebook(store, namespace, run)
        plan = resolve(store, step, run=run, notebook=chosen)
    except StepLoadError:
        raise
    except SameError as exc:          # the store could not be read: one line, like the rest
        raise StepLoadError(str(exc)) from None
    finally:
        store.close()
    return bind(plan, namespace)


def choose_notebook(store, namespace: dict, run: int | None) -> Path | None:
    """Without ``notebook=``: the kernel's own notebook when the front end names it and it has runs;
    else, with ``run=``, whichever notebook that run is of (None); else the one notebook in the
    current folder with recorded runs."""
    session = session_notebook(namespace)
    if session is not None and store.count_runs(notebook_path=session):
        return session
    if run is not None:
        return None
    found = sorted({r["notebook_path"] for r in store.list_runs(limit=500, folder=Path.cwd())})
    if len(found) == 1:
        return Path(found[0])
    if not found:
        raise StepLoadError(f"no runs of notebooks in {Path.cwd()} are recorded in the run store "
                            f"{store.masked_url}: pass notebook= (or run=)")
    raise StepLoadError(f"runs of several notebooks are recorded here ({', '.join(Path(f).name for f in found)}): "
                        f"pass notebook= to say which one")


def bind(plan: StepLoad, namespace: dict) -> LoadedStep:
    """Load every input first (all verified, nothing bound if one fails), then bind inputs and
    parameters, run the prologue's replays, and continue the generators."""
    store = ArtifactStore(plan.artifacts_root)
    for record in plan.inputs:                        # a missing or corrupt artifact fails before any change
        _verified(store, record, plan)
    loaded = LoadedStep(plan)
    _run(plan.setup.before_inputs, namespace, plan, "imports and configuration")
    values, groups = {}, {}
    for record in plan.inputs:
        try:
            if record.get("kind") == "group":
                if record["sha256"] not in groups:
                    groups[record["sha256"]] = load_group(record, store)
                values[record["name"]] = rebind(groups[record["sha256"]][record["name"]], namespace)
            else:
                values[record["name"]] = load_value(record, store, namespace)
        except ArtifactError as exc:
            raise _artifact_error(exc, record, plan) from None
        except Exception as exc:
            raise StepLoadError(f"cannot load input {record['name']!r} of step {plan.step!r} (run "
                                f"{plan.source_run_id}, artifact {record.get('sha256')}): "
                                f"{type(exc).__name__}: {exc}") from None
    states = {name: values.pop(name) for name in list(values) if name in STATE_VARIABLES}
    namespace.update(values)
    namespace.update(plan.params)
    for record in plan.inputs:
        if record["name"] in values:
            loaded.bound.append(Bound(record["name"], record.get("type") or type(values[record["name"]]).__name__,
                                      describe(values[record["name"]]), record.get("producer") or "?",
                                      record["sha256"]))
    loaded.bound += [Bound(k, type(v).__name__, describe(v), "parameter") for k, v in plan.params.items()]
    _run(plan.setup.after_inputs, namespace, plan, "configuration")
    from same_nb.runtime import state as _state

    # The states travel as inputs, so they are continued even when the prologue could not be read.
    for variable, state in states.items():
        _state.restore(STATE_VARIABLES[variable], state)
        if state is not None:             # None: the library was not imported, so nothing to continue
            loaded.generators.append(STATE_VARIABLES[variable])
    loaded.replayed = [line for line in (plan.setup.before_inputs + "\n" + plan.setup.after_inputs).splitlines()
                       if line.strip() and not line.startswith(("#", " ", "def _same_nb_replay", "_same_nb_replay()",
                                                               "del _same_nb_replay"))]
    return loaded


def _verified(store: ArtifactStore, record: dict, plan: StepLoad) -> None:
    try:
        store.verified_path(record["sha256"], record["name"])
    except ArtifactError as exc:
        raise _artifact_error(exc, record, plan) from None


def _artifact_error(exc: ArtifactError, record: dict, plan: StepLoad) -> StepLoadError:
    what = ("is corrupt (its bytes no longer hash to the recorded sha256)" if isinstance(exc, CorruptArtifactError)
            else "is missing")
    return StepLoadError(f"input {record['name']!r} of step {plan.step!r} in run {plan.source_run_id} {what}: "
                         f"{exc.path or record.get('location')} (sha256 {record['sha256']}). Run the "
                         f"pipeline again to rebuild it; nothing was bound")


def _run(code: str, namespace: dict, plan: StepLoad, what: str) -> None:
    """Run a part of the recorded prologue in the namespace; its guards need ``_same_nb_state`` only
    while it runs."""
    if not code.strip():
        return
    from same_nb.runtime import state as _state

    had = "_same_nb_state" in namespace
    previous = namespace.get("_same_nb_state")
    namespace["_same_nb_state"] = _state
    try:
        exec(compile(code, f"<step {plan.step} prologue, run {plan.source_run_id}>", "exec"), namespace)
    except Exception as exc:
        raise StepLoadError(f"replaying the {what} step {plan.step!r} started with in run {plan.source_run_id} "
                            f"failed: {type(exc).__name__}: {exc}") from None
    finally:
        if had:
            namespace["_same_nb_state"] = previous
        else:
            namespace.pop("_same_nb_state", None)


def describe(value) -> str:
    """Shape for arrays and frames, length for containers, else a short repr."""
    try:
        shape = getattr(value, "shape", None)
    except Exception:                     # a property that raises: fall back to the repr
        shape = None
    if isinstance(shape, tuple):
        return f"shape {shape}"
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict = 40, 40, 6, 4
    try:
        text = short.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 6:
        text += f" (len {len(value)})"
    return text


def summary(loaded: LoadedStep) -> str:
    """What was bound, and what was and was not restored, as the notebook shows it."""
    plan = loaded.plan
    how = "the latest run where it failed" if plan.chosen == "latest failed" else "as asked"
    lines = [f"same-nb: loaded step {plan.step!r} of run {plan.run_id} ({plan.status}; {how}) "
             f"of {Path(plan.notebook).name}"]
    if plan.source_run_id != plan.run_id:
        lines.append(f"  it was cached in run {plan.run_id}: its inputs are those run {plan.source_run_id} computed it from")
    if plan.error:
        lines.append(f"  it failed with {plan.error.get('ename')}: {str(plan.error.get('evalue'))[:200]}")
    rows = [(b.name, b.type, b.summary, b.source, (b.sha256 or "")[:_SHA_SHOWN]) for b in loaded.bound]
    if rows:
        heads = ("name", "type", "value", "from", "sha256")
        widths = [min(max(len(str(r[i])) for r in [heads, *rows]), 48) for i in range(5)]
        for r in [heads, *rows]:
            lines.append("  " + "  ".join(str(c)[:w].ljust(w) for c, w in zip(r, widths)).rstrip())
    else:
        lines.append("  the step had no inputs and no parameters")
    if loaded.replayed:
        lines.append(f"  replayed as the step started: {'; '.join(loaded.replayed)}")
    if loaded.generators:
        lines.append(f"  random generators continued where the step started: {', '.join(loaded.generators)}")
    if plan.setup.note:
        lines.append(f"  not replayed: {plan.setup.note}")
    lines.append("  not restored: files on disk (read as they are now), other environment; run the step's cells next")
    return "\n".join(lines)


def load_code(step: str, run: int, notebook: str) -> str:
    """The statement a kernel runs to load ``step`` of ``run``: every value written as a Python literal."""
    return f"import same_nb; same_nb.load_step({step!r}, run={int(run)!r}, notebook={notebook!r})"

