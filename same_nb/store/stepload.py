"""Which recorded step run a debugging session loads (``same_nb.load_step``), and what that step saw
when it started: its input artifacts with their producers, its parameters, and the setup its prologue
ran (imports and configuration replayed from earlier steps, random generator states).

Everything comes from the record of the run, never from the notebook as it is now: the step run's
input edges and cache info in the store, and the prologue cell of the executed step notebook the run
kept (the exact text that ran). Reading only: nothing here binds or runs anything.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from same_nb.errors import SameError
from same_nb.store.reads import valid_run_id
from same_nb.store.schema import runs, step_runs

PROLOGUE_CELL = "same-nb-prologue"
# The prologue template's fixed lines (templates/prologue.py.j2) that separate its parts;
# tests/store/test_stepload.py renders a prologue so a template change that moves them fails a test.
_LOAD_RUNTIME = "import same_nb.runtime as _same_nb_runtime"
_LOAD_STATE = "import same_nb.runtime.state as _same_nb_state"
_RESTORE = "_same_nb_state.restore("
_BEGIN = "_same_nb_state.begin("
NEVER_STARTED = ("pending", "skipped")


class StepLoadError(SameError):
    """A step run that cannot be loaded. In IPython it shows as its message alone, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


@dataclass
class Setup:
    """What the step's prologue did besides loading inputs, as it ran."""
    before_inputs: str = ""       # imports from earlier steps and configuration replayed before loading
    after_inputs: str = ""        # replays that read notebook variables or are guarded by an import
    restores: list[tuple[str, str]] = field(default_factory=list)   # (generator channel, state variable)
    note: str = ""                # why nothing could be read, when nothing could


@dataclass
class StepLoad:
    step: str
    run_id: int                   # the run asked for, or the latest failed one
    chosen: str                   # "given" | "latest failed"
    notebook: str                 # the run's notebook, as recorded
    status: str                   # the step's status in that run
    source_run_id: int            # the run whose step executed: another one when the step was cached
    inputs: list[dict]            # {name, sha256, kind, type, size, location, producer}
    params: dict
    artifacts_root: str
    executed_notebook: str | None
    setup: Setup
    error: dict | None = None     # the step's recorded error
    reason: str = ""              # why it ran, or which run it was reused from


def resolve(store, step: str, *, run: int | None = None, notebook: Path | None = None) -> StepLoad:
    """The step run to load: step ``step`` of run ``run`` (which must be of ``notebook`` when that is
    given), or of the latest run of ``notebook`` where the step failed."""
    if not isinstance(step, str) or not step:
        raise StepLoadError(f"the step to load is named by a non-empty string (got {step!r})")
    if run is not None and not valid_run_id(run):
        raise StepLoadError(f"a run is a whole number from 1 (got {run!r})")
    if run is None:
        if notebook is None:
            raise StepLoadError("give run= or notebook=: which notebook's latest failed run to load from")
        run, chosen = _latest_failed(store, step, notebook), "latest failed"
    else:
        chosen = "given"
    record = store.get_run(run)
    if record is None:
        raise StepLoadError(f"there is no run {run} in the run store {store.masked_url}")
    if notebook is not None and Path(record["notebook_path"]) != Path(notebook).resolve():
        raise StepLoadError(f"run {run} is a run of {record['notebook_path']}, not of {Path(notebook).resolve()}; "
                            f"pass notebook={record['notebook_path']!r} to load it anyway")
    step_run = _step_of(record, step)
    if step_run["status"] in NEVER_STARTED or step_run["started_at"] is None:
        why = f": {step_run['reason']}" if step_run.get("reason") else ""
        ran = [s["step_name"] for s in record["steps"] if s["started_at"] is not None]
        raise StepLoadError(f"step {step!r} never started in run {run} ({step_run['status']}{why}), so it has no "
                            f"recorded inputs to load; steps that started: {_names(ran)}")
    if step_run["status"] == "running":
        raise StepLoadError(f"step {step!r} is still running in run {run}: its inputs are recorded when it ends")
    source, source_step = record, step_run
    if step_run["cache_hit"]:
        source, source_step = _computed_by(store, step_run, run)
    inputs = _inputs(source, source_step)
    loaded = StepLoad(step=step, run_id=run, chosen=chosen, notebook=record["notebook_path"],
                      status=step_run["status"], source_run_id=source["id"], inputs=inputs,
                      params=dict((source_step.get("cache_info") or {}).get("params") or {}),
                      artifacts_root=_artifacts_root(inputs, source),
                      executed_notebook=source_step.get("executed_notebook"),
                      setup=read_setup(source_step.get("executed_notebook")),
                      error=step_run.get("error"), reason=step_run.get("reason") or "")
    return loaded


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names) or "none"


def _step_of(record: dict, step: str) -> dict:
    found = next((s for s in record["steps"] if s["step_name"] == step), None)
    if found is None:
        raise StepLoadError(f"run {record['id']} has no step {step!r}; its steps are "
                            f"{_names([s['step_name'] for s in record['steps']])}")
    return found


def _latest_failed(store, step: str, notebook: Path) -> int:
    path = str(Path(notebook).resolve())
    with store._tx(write=False) as conn:
        found = conn.execute(
            select(runs.c.id).join(step_runs, step_runs.c.run_id == runs.c.id)
            .where(runs.c.notebook_path == path, step_runs.c.step_name == step, step_runs.c.status == "failed")
            .order_by(runs.c.id.desc()).limit(1)).scalar()
        latest = conn.execute(select(runs.c.id).where(runs.c.notebook_path == path)
                              .order_by(runs.c.id.desc()).limit(1)).scalar()
        names = [] if latest is None else list(conn.execute(
            select(step_runs.c.step_name).where(step_runs.c.run_id == latest).order_by(step_runs.c.id)).scalars())
    if found is not None:
        return found
    if latest is None:
        raise StepLoadError(f"no runs of {path} are recorded in the run store {store.masked_url}: "
                            f"run it first (same-nb run), or give run=")
    if step not in names:
        raise StepLoadError(f"{Path(path).name} has no step {step!r} in its latest run ({latest}); "
                            f"its steps are {_names(names)}")
    raise StepLoadError(f"step {step!r} has not failed in any recorded run of {Path(path).name}; "
                        f"give run=N to load it from a run where it ran (the latest is run {latest})")


def _computed_by(store, step_run: dict, run: int) -> tuple[dict, dict]:
    """A cached step run's inputs are those of the run that computed its outputs: the newest earlier
    step run that executed with the same cache key."""
    with store._tx(write=False) as conn:
        producer = conn.execute(
            select(step_runs.c.run_id).where(
                step_runs.c.cache_key == step_run["cache_key"], step_runs.c.step_name == step_run["step_name"],
                step_runs.c.status == "success", step_runs.c.cache_hit.is_(False),
                step_runs.c.id < step_run["id"])
            .order_by(step_runs.c.id.desc()).limit(1)).scalar()
    if producer is None:
        raise StepLoadError(f"step {step_run['step_name']!r} was cached in run {run} ({step_run.get('reason')}), "
                            f"but the run that computed it is no longer recorded")
    source = store.get_run(producer)
    return source, _step_of(source, step_run["step_name"])


def _inputs(record: dict, step_run: dict) -> list[dict]:
    """The step run's variable inputs, each with the step of the same run that produced it (its
    outputs hold the same name and hash)."""
    made = {(o["name"], o["sha256"]): s["step_name"] for s in record["steps"] for o in s.get("outputs", [])}
    edges = step_run.get("inputs", [])
    if not edges:       # interrupted or cancelled mid-step: edges are written only by a step's finish
        edges = _spec_inputs(record, step_run["step_name"])
    return [{**e, "producer": made.get((e["name"], e["sha256"]))} for e in edges
            if e.get("role") in (None, "variable")]


def _spec_inputs(record: dict, step: str) -> list[dict]:
    spec = Path(record.get("run_dir") or "", "steps", step, "spec.json")
    try:
        data = json.loads(spec.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [{**r, "name": name, "role": "variable"} for name, r in (data.get("inputs") or {}).items()]


def _artifacts_root(inputs: list[dict], record: dict) -> str:
    for i in inputs:
        if i.get("location"):
            return str(Path(i["location"]).parent.parent)
    return str(Path(record["notebook_path"]).parent / ".same" / "artifacts")


def read_setup(executed: str | None) -> Setup:
    """The prologue of the executed step notebook, split into what ran before and after the inputs
    loaded and the generator states it restored."""
    if not executed:
        return Setup(note="the run kept no executed notebook for this step")
    try:
        cells = json.loads(Path(executed).read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Setup(note=f"cannot read the executed step notebook {executed}: {exc}")
    cell = next((c for c in cells if isinstance(c, dict) and c.get("id") == PROLOGUE_CELL), None)
    if cell is None:
        return Setup(note=f"the executed step notebook {executed} has no prologue cell")
    source = cell.get("source", "")
    return split_prologue("".join(source) if isinstance(source, list) else str(source))


def split_prologue(source: str) -> Setup:
    lines = source.splitlines()
    try:
        load, state = lines.index(_LOAD_RUNTIME), lines.index(_LOAD_STATE)
    except ValueError:
        return Setup(note="the step's prologue is not one this version of same-nb knows: nothing replayed")
    tail = lines[state + 1:]
    end = next((i for i, line in enumerate(tail) if line.startswith((_RESTORE, _BEGIN))), len(tail))
    restores = []
    for line in tail[end:]:
        if line.startswith(_RESTORE):
            call = ast.parse(line).body[0].value
            restores.append((ast.literal_eval(call.args[0]), call.args[1].id))
    before = [line for line in lines[:load] if not line.startswith("# same-nb prologue")]
    return Setup(before_inputs="\n".join(before), after_inputs="\n".join(tail[:end]), restores=restores)
