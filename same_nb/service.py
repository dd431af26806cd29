"""The service layer: one place that the CLI, the Jupyter server extension and tests call.

Functions here take paths and plain values and return plain objects; they never print.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from same_nb.bundle import build
from same_nb.bundle.build import CompileResult, default_bundle_dir
from same_nb.errors import SameError
from same_nb.frontend import inspection
from same_nb.frontend.inspection import Inspection
from same_nb.frontend.ir import Pipeline
from same_nb.frontend.params import resolve_params

__all__ = ["CompileResult", "Inspection", "RunResult", "check_param_text", "check_run_params",
           "compile_for_kubeflow", "compile_notebook", "default_bundle_dir", "inspect_notebook", "lock_notebook",
           "refresh_remote_runs", "rerun_run", "resolve_params", "run_notebook", "run_on_kubeflow", "run_sweep",
           "sweep_table",
           "verify_notebook", "forget_effects"]


def _learned(path: str | Path) -> list[dict]:
    from same_nb.store.learned import load_learned

    return load_learned(Path(path))


def inspect_notebook(path: str | Path, manifest_path: str | Path | None = None) -> Inspection:
    """The notebook's pipeline as the next run would execute it: analysis plus learned effects."""
    return inspection.inspect_notebook(path, manifest_path, learned=_learned(path))


def compile_notebook(path: str | Path, out_dir: str | Path | None = None,
                     manifest_path: str | Path | None = None, **options) -> CompileResult:
    if options.get("lock"):
        options.setdefault("observed", _observed(path))
    return build.compile_notebook(path, out_dir, manifest_path, learned=_learned(path), **options)


def forget_effects(path: str | Path, run: int | None = None) -> list[dict]:
    """Drop the effects earlier runs taught same-nb about this notebook (or only run ``run``'s)."""
    from same_nb.store.learned import forget_learned

    notebook = Path(path)
    if not notebook.is_file():
        raise SameError("no such notebook", path=str(path))
    return forget_learned(notebook, run)


def _observed(path: str | Path) -> dict[str, dict]:
    from same_nb.store.observed import load_observed

    return load_observed(Path(path))


def lock_notebook(path: str | Path, out_dir: str | Path | None = None, *, pipeline: Pipeline | None = None,
                  progress=None, **lock_options):
    """Per-step lockfiles under ``out_dir/envs/``: each step's imports, plus what its last local run
    loaded and passed between steps (``.same/observed.json``); every pin says which of those it came from.
    A step that never ran locally is locked from its imports alone, with a warning saying so."""
    return build.lock_notebook(path, out_dir, pipeline=pipeline, progress=progress, observed=_observed(path),
                               **lock_options)


def verify_notebook(path: str | Path, out_dir: str | Path | None = None, *, progress=None, run: bool = True,
                    jobs: int | None = None, timeout: float | None = None, manifest_path=None,
                    **lock_options):
    """Prove the locks. Install each distinct lock into a clean cached venv and import every step's
    modules there (``same_nb`` itself from the runtime copy every kernel and pod gets, never from the
    lock); then (``run``) run each step in its venv on the inputs and parameters of its last successful
    local run and compare its outputs' sha256 with that run's (``local/verify_run.py``). A step with no
    such run is ``not-run``, which is not a failure of its lock."""
    from same_nb.envs.lock import LOCAL_PLATFORM
    from same_nb.envs.sources import RUNTIME_MODULES

    if not lock_options.get("platform"):        # its venvs run here, whatever the pods' platform
        lock_options["platform"] = LOCAL_PLATFORM
    from same_nb.envs.verify import verify_locks
    from same_nb.frontend.pipeline import build_pipeline

    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise SameError("no such notebook", path=str(path))
    if timeout is not None and not timeout > 0:
        raise SameError(f"--timeout must be a positive number of seconds, got {timeout}")
    pipeline = build_pipeline(notebook)
    result = lock_notebook(path, out_dir, pipeline=pipeline, progress=progress, **lock_options)
    shipped = {s.name: sorted({i.top for i in s.imports + s.replay_imports} & RUNTIME_MODULES)
               for s in pipeline.steps}
    report = verify_locks(result, notebook.parent, progress=progress, runtime_modules=shipped)
    if run:
        import time

        from same_nb.local.prepared import prepare
        from same_nb.local.runner import default_jobs
        from same_nb.local.verify_run import run_checks

        started = time.perf_counter()
        prepared = prepare(notebook, Path(manifest_path) if manifest_path else None)
        checks = run_checks(notebook, prepared, result, jobs=jobs or default_jobs(), timeout=timeout,
                            progress=progress)
        for step in report.steps:
            step.run = checks.get(step.step)
        report.seconds += time.perf_counter() - started
    return result, report


# -- local runs ------------------------------------------------------------------------------------

@dataclass
class RunResult:
    run_id: int
    run_dir: Path
    status: str
    seconds: float
    states: dict
    pipeline: Pipeline
    checks: dict | None = None       # same.yaml's data checks on this run (store/drift_runs.evaluate_checks)

    @property
    def ok(self) -> bool:
        return self.status == "success"


def _isolated_kernels(notebook: Path, prepared) -> tuple[dict[str, str], str]:
    """Each step's kernel interpreter: a venv built from the step's lock plus ipykernel, and a copy
    of the step runtime on PYTHONPATH (never the environment same-nb itself is installed in)."""
    from same_nb.envs.lock import LOCAL_PLATFORM
    from same_nb.envs.verify import ensure_kernel_venv, runtime_copy
    from same_nb.local.verify_run import kernel_extras

    runtime_root = runtime_copy(notebook.parent)
    locks = lock_notebook(notebook, prepared.bundle_dir, pipeline=prepared.pipeline, platform=LOCAL_PLATFORM)
    extra = kernel_extras()
    pythons = {name: str(ensure_kernel_venv(lock, notebook.parent, extra_packages=extra))
               for name, lock in locks.steps.items()}
    return pythons, str(runtime_root)


def run_notebook(path: str | Path, *, params: list[tuple[str, str]] = (), params_file=None,
                 jobs: int | None = None, use_cache: bool = True, resume: int | None = None,
                 manifest_path=None, progress=None, snapshot: bool = False,
                 timeout: float | None = None, isolated: bool = False,
                 run_id: int | None = None, warn=None, kernel: str | None = None, lean: bool = True,
                 sweep_id: str | None = None, shared: dict[str, dict] | None = None) -> RunResult:
    """Compile (cached by content) and run the notebook locally; record everything in the store.

    ``run_id`` drives a run row created beforehand (by ``background.start_run``) instead of a new one.
    ``warn`` is handed the analysis' warnings (an undefined name, …), one line each, before any step runs.
    ``kernel``: "fork" (kernels forked from a zygote; the default where supported) or "fresh".
    ``lean``: first try recording the run without SQLAlchemy, which succeeds only if every step is cached
    (local/cached_run.py); otherwise nothing was shown or recorded and the run starts again normally.
    ``sweep_id`` records the run as a grid point of that sweep; ``shared`` ({step: its record in another
    run, as ``--resume`` reuses one}) are the sweep's steps computed once, recorded here as cache hits of it.
    """
    import time

    from same_nb.local.prepared import prepare
    from same_nb.local.runner import Runner, RunRequest, default_jobs

    started = time.time()
    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise SameError("no such notebook", path=str(path))
    if timeout is not None and not timeout > 0:
        raise SameError(f"--timeout must be a positive number of seconds, got {timeout}")
    from same_nb.local.prepared import is_prepared
    from same_nb.local.zygotes import default_kernel, start_spare

    kernel = default_kernel(kernel, isolated=isolated)
    manifest_arg = Path(manifest_path) if manifest_path else None
    # Compiling takes about a second: start the first kernel meanwhile. A cached notebook compiles
    # instantly and may need no kernel at all, so it gets none.
    spare = None
    if not isolated and not is_prepared(notebook, manifest_arg):
        (notebook.parent / ".same").mkdir(exist_ok=True)
        spare = start_spare(kernel=kernel, kernel_name="python3", cwd=str(notebook.parent),
                            env={"PYTHONHASHSEED": "0"}, log=str(notebook.parent / ".same" / f"kernel-{os.getpid()}.log"))
    try:
        prepared = prepare(notebook, manifest_arg)
    except BaseException:
        discard_spare(spare)
        raise
    pipeline = prepared.pipeline
    checks = prepared.config.get("checks")
    if checks:
        try:
            _check_variables(pipeline, checks, manifest_arg.name if manifest_arg else "same.yaml")
        except SameError:
            discard_spare(spare)
            raise
    if warn is not None:
        for diagnostic in pipeline.diagnostics:
            if diagnostic.severity == "warning":
                warn(diagnostic.render())
    from same_nb.local.cached_run import HeldProgress
    from same_nb.store.lean import NotAllCached, open_lean_store

    held, store = None, None
    if lean and use_cache and spare is None and resume is None and run_id is None and not (isolated or snapshot
                                                                                           or checks):
        store = open_lean_store(notebook.parent)
    if store is None:
        from same_nb.store.database import open_store  # SQLAlchemy: ~0.3 s, which the lean store avoids

        store = open_store(notebook_dir=notebook.parent)
    try:
        reuse: dict[str, dict] = {}
        if resume is not None:
            previous = store.get_run(resume)
            if previous is None:
                raise SameError(f"there is no run {resume} to resume")
            if previous["notebook_sha256"] != pipeline.notebook_sha256:
                raise SameError(f"the notebook changed since run {resume}; start a new run instead of resuming")
            if params or params_file:
                raise SameError("--resume reuses the parameters of the run it resumes; drop -p/--params")
            values = dict(previous["params"])
            for s in previous["steps"]:
                if s["status"] in ("success", "cached"):
                    reuse[s["step_name"]] = {"outputs": s["outputs"], "reason": f"done in run {resume}",
                                             "step_run_id": s["id"]}
        else:
            values = resolve_params(pipeline, prepared.config.get("params", {}), list(params), params_file)
            reuse.update(shared or {})
        manifest_file = Path(manifest_path) if manifest_path else notebook.parent / "same.yaml"
        if manifest_file.is_file():
            from same_nb.store.datasets import prepare_datasets

            prepare_datasets(manifest_file)         # a sha256 mismatch refuses the run here
        from same_nb.store.openlineage import lineage_config

        openlineage = lineage_config({"lineage": {"openlineage": prepared.config.get("openlineage")}}
                                     if prepared.config.get("openlineage") else None, base=notebook.parent)
        pythons, runtime_path = (_isolated_kernels(notebook, prepared) if isolated else ({}, None))
        if run_id is None:
            run_id = store.create_run(notebook_path=str(notebook), notebook_sha256=pipeline.notebook_sha256,
                                      pipeline_name=pipeline.name, params=values, target="local",
                                      run_dir_root=notebook.parent / ".same" / "runs", sweep_id=sweep_id)
        run_dir = notebook.parent / ".same" / "runs" / str(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        request = RunRequest(notebook=notebook, pipeline=pipeline, bundle_dir=prepared.bundle_dir, params=values,
                             jobs=jobs or default_jobs(), use_cache=use_cache and prepared.config.get("cache", True),
                             env=prepared.config.get("env", {}), step_env=prepared.config.get("step_env", {}),
                             reuse=reuse, snapshot=snapshot, timeout=timeout, pythons=pythons,
                             runtime_path=runtime_path, openlineage=openlineage, spare_kernel=spare, kernel=kernel)
        from same_nb.local.progress import PlainProgress
        progress = progress or PlainProgress()
        held = HeldProgress(progress) if getattr(store, "lean", False) else None
        runner = Runner(request, store, run_id, run_dir, held or progress)
        status, report, error = "failed", None, None
        try:
            states = runner.run()
            status = "success" if all(s.status in ("success", "cached") or n in runner.stopped
                                      for n, s in states.items()) else "failed"
            if status == "success" and checks:
                report, error = _run_checks(store, run_id, checks)
                status = "failed" if error else status
        except KeyboardInterrupt:
            status = "cancelled"
            raise
        finally:
            (held or progress).stop()
            store.finish_run(run_id, status, error)
        if held is not None:
            held.replay()
        return RunResult(run_id=run_id, run_dir=run_dir, status=status, seconds=time.time() - started,
                         states=states, pipeline=pipeline, checks=report)
    except NotAllCached:                           # from the lean store only: it recorded nothing
        pass
    finally:
        discard_spare(spare)                       # unless a step adopted it (then it is shut down already)
        store.close()
    return run_notebook(path, params=params, params_file=params_file, jobs=jobs, use_cache=use_cache,
                        manifest_path=manifest_path, progress=progress, timeout=timeout, kernel=kernel, lean=False,
                        sweep_id=sweep_id, shared=shared)


# -- parameter sweeps -------------------------------------------------------------------------------

@dataclass
class SweepResult:
    sweep_id: str
    plan: object                      # frontend.sweep.SweepPlan
    runs: list                        # RunResult per grid point that ran, in grid order
    values: list[dict]                # the swept values of each of ``runs``
    not_started: list[dict]           # grid points never run: {"values": {...}, "why": str}
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.not_started and all(r.ok for r in self.runs)


def new_sweep_id() -> str:
    """Short enough to type: the UTC date and time, and 6 random hex digits."""
    import secrets
    import time

    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def plan_notebook_sweep(path: str | Path, axes: list, *, params: list[tuple[str, str]] = (), params_file=None,
                        manifest_path=None):
    """Check a sweep before anything runs: the grid against the notebook's parameters (typed like each
    default, as -p values are) and the fixed -p/--params values; returns the SweepPlan."""
    from same_nb.frontend.manifest_same import read_yaml_file
    from same_nb.frontend.sweep import plan_sweep
    from same_nb.local.prepared import prepare

    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise SameError("no such notebook", path=str(path))
    prepared = prepare(notebook, Path(manifest_path) if manifest_path else None)
    resolve_params(prepared.pipeline, prepared.config.get("params", {}), list(params), params_file)
    fixed = {name for name, _ in params}
    if params_file:
        data = read_yaml_file(Path(params_file), "parameters")
        fixed |= set(data) if isinstance(data, dict) else set()
    return plan_sweep(prepared.pipeline, axes, fixed)


def run_sweep(path: str | Path, axes: list, *, params: list[tuple[str, str]] = (), params_file=None,
              jobs: int | None = None, use_cache: bool = True, manifest_path=None, timeout: float | None = None,
              kernel: str | None = None, progress_for=None, announce=None, sweep_id: str | None = None,
              warn=None) -> SweepResult:
    """Run every point of a parameter grid as its own run, all recorded with one ``sweep_id``.

    ``axes``: ``frontend.sweep.Axis`` list (from ``--sweep`` or a grid file). Steps no swept parameter
    reaches run once, in the first grid point's run; every other run records them as cache hits of
    those step runs (also with ``use_cache`` False). ``progress_for(index, label)`` gives a point's
    progress; ``announce(sweep_id, plan)`` is called once the grid is checked, before any run."""
    import time

    from same_nb.frontend.sweep import point_label
    from same_nb.local.runner import default_jobs
    from same_nb.local.sweep import run_grid

    started = time.time()
    plan = plan_notebook_sweep(path, axes, params=params, params_file=params_file, manifest_path=manifest_path)
    if sweep_id is not None:
        _check_new_sweep_id(Path(path).resolve().parent, sweep_id)
    sweep_id = sweep_id or new_sweep_id()
    if announce is not None:
        announce(sweep_id, plan)
    total = len(plan.points)

    def run_one(index: int, shared: dict, run_jobs: int) -> RunResult:
        point = plan.points[index]
        progress = progress_for(index, f"point {index + 1}/{total} ({point_label(point)})") if progress_for else None
        return run_notebook(path, params=list(params) + list(point.items()), params_file=params_file,
                            jobs=run_jobs, use_cache=use_cache, manifest_path=manifest_path, progress=progress,
                            timeout=timeout, kernel=kernel, lean=False, sweep_id=sweep_id, shared=shared,
                            warn=warn if index == 0 else None)

    def shared_of(first: RunResult) -> tuple[dict, str | None]:
        from same_nb.store.database import open_store

        with open_store(notebook_dir=Path(path).resolve().parent) as store:
            run = store.get_run(first.run_id)
        records, failed = {}, None
        for step in run["steps"]:
            if step["step_name"] not in plan.shared_steps:
                continue
            if step["status"] in ("success", "cached"):
                records[step["step_name"]] = {"outputs": step["outputs"], "step_run_id": step["id"],
                                              "reason": f"shared in sweep {sweep_id}: step run {step['id']} "
                                                        f"of run {first.run_id}"}
            elif step["status"] == "failed" and failed is None:
                failed = step["step_name"]
        return records, failed

    outcome = run_grid(total, run_one, shared_of, jobs=jobs or default_jobs(), sweep_id=sweep_id,
                       shares=bool(plan.shared_steps))
    results = [outcome.results[i] for i in sorted(outcome.results)]
    missing = [{"values": plan.points[i], "why": outcome.why_not} for i in outcome.not_started]
    missing += [{"values": plan.points[i], "why": why} for i, why in sorted(outcome.errors.items())]
    return SweepResult(sweep_id=sweep_id, plan=plan, runs=results, not_started=missing,
                       values=[plan.points[i] for i in sorted(outcome.results)],
                       seconds=time.time() - started)


def _check_new_sweep_id(folder: Path, sweep_id: str) -> None:
    import re

    from same_nb.store.database import open_store
    from same_nb.store.sweeps import sweep_runs

    if not isinstance(sweep_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", sweep_id):
        raise SameError(f"a sweep id is 1 to 64 letters, digits, '.', '_' or '-'; got {str(sweep_id)[:80]!r}")
    with open_store(notebook_dir=folder) as store:
        if sweep_runs(store, sweep_id):
            raise SameError(f"the store already holds sweep {sweep_id!r}; pick another --sweep-id "
                            f"(see `same-nb runs --sweep {sweep_id}`)")


def sweep_table(store, sweep_id: str, best: str | None = None, direction: str | None = None) -> dict:
    """``same-nb runs --sweep``: one row per run with its swept values, metrics and status; the best run
    by ``best`` (``direction`` "min"/"max", default by the metric's name). See store/sweeps.py."""
    from same_nb.store.sweeps import sweep_table as table

    return table(store, sweep_id, best, direction)


def discard_spare(spare) -> None:
    """``kernels.discard_spare``, imported (with asyncio) only when a kernel was started: a cached rerun
    starts none."""
    if spare is not None:
        from same_nb.local.kernels import discard_spare as discard

        discard(spare)


MAX_PARAM_BYTES = 100_000           # under Linux's 128 KiB limit on one command-line argument


def check_param_text(params: dict) -> None:
    """Refuse parameter names and values no process can be given: not text, NUL characters, lone
    surrogates (not encodable), or longer than one command-line argument may be."""
    if not isinstance(params, dict):
        raise SameError("params must map parameter names to values written as text, e.g. {\"alpha\": \"0.5\"}")
    for name, value in params.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise SameError("params must map parameter names to values written as text, e.g. {\"alpha\": \"0.5\"}")
        for label, text in ((f"the name of parameter {name[:40]!r}", name),
                            (f"the value of parameter {name[:40]!r}", value)):
            if "\x00" in text:
                raise SameError(f"{label} contains a NUL character, which no process argument can hold")
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise SameError(f"{label} is not valid Unicode text (it holds a lone surrogate)") from None
            if size > MAX_PARAM_BYTES:
                raise SameError(f"{label} is {size} bytes long; at most {MAX_PARAM_BYTES} are accepted")


def check_run_params(path: str | Path, params: dict[str, str]) -> list[tuple[str, str]]:
    """The API's run start: check ``params`` ({name: value as text}) against the notebook BEFORE any
    run row exists; returns them as ``(name, value)`` pairs for ``background.start_run`` (which hands
    them to the run process in a file, so a value may start with '-'). Raises SameError."""
    from same_nb.local.prepared import prepare
    from same_nb.store.rows import check_json

    check_param_text(params)
    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise SameError("no such notebook", path=str(path))
    prepared = prepare(notebook)
    values = resolve_params(prepared.pipeline, prepared.config.get("params", {}), list(params.items()))
    check_json(f"parameters of pipeline {prepared.pipeline.name!r}", values)
    return list(params.items())


def rerun_run(run_id: int, *, notebook_dir=None, jobs: int | None = None, progress=None):
    """``same-nb rerun``: run a recorded run again from its notebook snapshot; compare every output."""
    from same_nb.store.rerun import rerun

    return rerun(run_id, run_notebook, notebook_dir=notebook_dir, jobs=jobs, progress=progress)


# -- Kubeflow ----------------------------------------------------------------------------------------

KFP_STATES = {"SUCCEEDED": "success", "FAILED": "failed", "CANCELED": "cancelled", "SKIPPED": "success"}


def compile_for_kubeflow(path: str | Path, out_dir=None, manifest_path=None, *, python_version=None,
                         platform=None, progress=None, image=None, bundle_uri=None, sweep_axes=None,
                         sweep_parallelism=None):
    """``sweep_axes`` (``frontend.sweep.Axis`` list): compile the grid as nested ``dsl.ParallelFor``
    loops around the steps a swept parameter reaches; the others run once."""
    from same_nb.kubeflow.compiler import compile_kubeflow

    sweep = plan_notebook_sweep(path, sweep_axes, manifest_path=manifest_path).axes if sweep_axes else None
    return compile_kubeflow(path, out_dir, manifest_path, python_version=python_version, platform=platform,
                            progress=progress, image=image, bundle_uri=bundle_uri, sweep=sweep,
                            sweep_parallelism=sweep_parallelism)


def run_on_kubeflow(path: str | Path, host: str, *, params: list[tuple[str, str]] = (), params_file=None,
                    experiment=None, namespace=None, existing_token=None, wait: bool = False,
                    manifest_path=None, out_dir=None, progress=None, image=None, bundle_uri=None):
    """Compile, upload and start a KFP run; record it in the store with its KFP run id.
    Returns (store run id, SubmittedRun)."""
    from same_nb.kubeflow.submit import run_kubeflow
    from same_nb.store.database import open_store

    notebook = Path(path).resolve()
    compiled, submitted = run_kubeflow(notebook, host, out_dir=out_dir, manifest_path=manifest_path,
                                       params=list(params), params_file=params_file, experiment=experiment,
                                       namespace=namespace, existing_token=existing_token, wait=wait,
                                       progress=progress, image=image, bundle_uri=bundle_uri)
    values = resolve_params(compiled.pipeline, compiled.defaults, list(params), params_file)
    with open_store(notebook_dir=notebook.parent) as store:
        run_id = store.create_run(notebook_path=str(notebook), notebook_sha256=compiled.pipeline.notebook_sha256,
                                  pipeline_name=compiled.name, params=values, target="kubeflow",
                                  run_dir_root=notebook.parent / ".same" / "runs")
        store.set_remote(run_id, remote_id=submitted.run_id, remote_url=submitted.url)
        final = KFP_STATES.get(submitted.state)
        if final:
            store.finish_run(run_id, final)
    return run_id, submitted


def refresh_remote_runs(store, runs: list[dict]) -> list[str]:
    """Update the status of unfinished Kubeflow runs in ``runs`` from their servers; returns notes
    for servers that could not be reached (the stored status is kept)."""
    from urllib.parse import urlsplit

    notes = []
    for run in runs:
        if run.get("target") != "kubeflow" or not run.get("remote_id") or run["status"] not in ("pending", "running"):
            continue
        url = urlsplit(run.get("remote_url") or "")
        if not url.scheme:
            continue
        from same_nb.kubeflow.submit import refresh_status

        try:
            status = refresh_status(f"{url.scheme}://{url.netloc}", run["remote_id"])
        except SameError as exc:
            notes.append(f"run {run['id']}: status not refreshed ({exc})")
            continue
        final = KFP_STATES.get(status.state)
        if final:
            store.finish_run(run["id"], final, error=status.error)
            run["status"] = final
    return notes


# -- the sidebar's editor, labels, live logs and comparisons -----------------------------------------

def inspect_notebook_content(path: str | Path, content: dict | str | bytes,
                             manifest_path: str | Path | None = None) -> Inspection:
    """:func:`inspect_notebook` of an editor's unsaved notebook: ``content`` is its nbformat JSON, analysed
    as if it were the file at ``path`` (same.yaml and learned effects beside it). Nothing is written, and
    the file at ``path`` is not read."""
    import json

    raw = content if isinstance(content, bytes) else (
        content.encode() if isinstance(content, str) else json.dumps(content).encode())
    return inspection.inspect_notebook(path, manifest_path, learned=_learned(path), content=raw)


def label_run(store, run_id: int, **label) -> dict:
    """Set a run's ``name`` and/or ``note`` (None clears one); the updated run."""
    unknown = sorted(set(label) - {"name", "note"})
    if unknown:
        raise SameError(f"a run has a name and a note; cannot set {', '.join(unknown)}")
    for field, value in label.items():
        if isinstance(value, str):
            label[field] = value.strip() or None
    return store.label_run(run_id, **label)


def compare_runs(store, run_ids: list[int]) -> dict:
    """What differs between two or more runs (``store.lineage.compare``): one value per run in every list;
    ``drift``: each later run's data drift from the first (``data_drift``)."""
    from same_nb.store.lineage import compare

    diff = compare(store, *run_ids)
    diff["drift"] = [data_drift(store, run_ids[0], other) for other in run_ids[1:]]
    return diff


# -- data profiles and drift (runtime/profile.py, store/drift.py, store/drift_runs.py) ---------------

def data_drift(store, baseline: int, run: int, direction: str = "outputs") -> dict:
    """Schema changes and per-column PSI of the DataFrames, Series and arrays that ``baseline`` and
    ``run`` both pass on (``direction="inputs"``: that their steps read), by step and variable."""
    from same_nb.store.drift_runs import drift_between

    return drift_between(store, baseline, run, direction=direction)


def drifted_runs(store, *, notebook_path=None, folder=None, baseline: int | None = None, limit: int = 20,
                 offset: int = 0, threshold: float = 0.1) -> dict:
    """``same-nb runs --drift``: runs whose step inputs drifted from a baseline, each with its worst column."""
    from same_nb.store.drift_runs import drifted_runs as find

    if not threshold > 0:
        raise SameError(f"--threshold must be a PSI above 0, got {threshold}")
    return find(store, notebook_path=notebook_path, folder=folder, baseline=baseline, limit=limit, offset=offset,
                threshold=threshold)


def _check_variables(pipeline: Pipeline, checks: dict, manifest: str) -> None:
    """same.yaml's checks.drift.variables must name variables a step passes on: a typo would check nothing."""
    wanted = (checks.get("drift") or {}).get("variables") or []
    passed = sorted({name for step in pipeline.steps for name in step.outputs})
    unknown = [name for name in wanted if name not in passed]
    if unknown:
        raise SameError(f"{manifest}: checks.drift.variables: {', '.join(map(repr, unknown))} "
                        f"{'is' if len(unknown) == 1 else 'are'} not passed between steps, so no profile is "
                        f"kept; variables passed between steps: {', '.join(passed) or 'none'}")


def _run_checks(store, run_id: int, checks: dict) -> tuple[dict, str | None]:
    """Evaluate same.yaml's checks on a run whose steps all succeeded: (report, the run's error or None)."""
    from same_nb.store.drift_runs import evaluate_checks

    report = evaluate_checks(store, run_id, checks)
    failed = [f["message"] for f in report["findings"] if f["level"] == "fail"]
    return report, ("data check failed: " + "; ".join(failed)) if failed else None


STEP_LOG = "log.txt"                       # <run dir>/steps/<step>/log.txt: papermill's stdout/stderr of the step
MAX_EXECUTED_SCAN = 32 * 1024 * 1024       # an executed notebook larger than this is not parsed for the cell


def step_log(run: dict, step: str, limit: int, read) -> dict | None:
    """The newest ``limit`` characters of a step run's output (live while it runs: papermill appends
    each stream message to the step's log as it arrives), whether it is running, and the source cell
    running when the executed notebook (written at most once a second) shows one. ``read(path, limit,
    tail)`` returns a file's bytes, or None when it is refused or missing (the server confines it).
    None when the run has no such step (while a run compiles, before its steps are recorded, any step
    is pending)."""
    import json

    found = next((s for s in run.get("steps", []) if s["step_name"] == step), None)
    if found is None and not run.get("steps") and run["status"] in ("pending", "running"):
        found = {"step_name": step, "status": "pending"}     # the run is still compiling: no step rows yet
    if found is None:
        return None
    running = found["status"] == "running" and run["status"] in ("pending", "running")
    steps_dir = Path(run["run_dir"]) / "steps" if run.get("run_dir") else None
    log = found.get("log_path") or (steps_dir / step / STEP_LOG if steps_dir else None)
    data = read(log, 4 * limit + 4, True) if log and limit else None
    text = data.decode(errors="replace")[-limit:] if data else ""
    if data and len(data) == 4 * limit + 4 and text.startswith("\ufffd"):
        text = text[1:]                     # the tail began inside a UTF-8 character
    cell = None
    executed = found.get("executed_notebook") or (steps_dir / f"{step}.ipynb" if steps_dir else None)
    if running and executed:
        raw = read(executed, MAX_EXECUTED_SCAN, False)
        try:
            cells = json.loads(raw)["cells"] if raw else []
            now = next((c for c in cells if c.get("metadata", {}).get("papermill", {}).get("status") == "running"),
                       None)
            cell = now["metadata"].get("same_nb", {}).get("cell") if now else None
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            cell = None
    return {"run_id": run["id"], "step": step, "status": found["status"], "text": text, "running": running,
            "cell": cell if isinstance(cell, int) and not isinstance(cell, bool) else None}


def load_step(namespace: dict, step: str, *, run: int | None = None, notebook=None):
    """Bind what step ``step`` saw at its start in a recorded run into ``namespace`` (``same_nb.load_step``):
    a :class:`same_nb.local.debug.LoadedStep`."""
    from same_nb.local.debug import load_into

    return load_into(namespace, step, run=run, notebook=notebook)


def debug_step_code(store, run: dict, step: str) -> dict:
    """For the sidebar's "Debug in notebook": the code that loads ``step`` of ``run`` in the notebook's
    kernel (which starts in the notebook's folder), after checking that it can be loaded."""
    from same_nb.local.debug import load_code
    from same_nb.store.stepload import resolve

    notebook = Path(run["notebook_path"])
    plan = resolve(store, step, run=run["id"], notebook=notebook)
    return {"code": load_code(step, run["id"], notebook.name), "run_id": run["id"], "step": step,
            "status": plan.status, "source_run_id": plan.source_run_id,
            "inputs": [i["name"] for i in plan.inputs if not i["name"].startswith("_same_nb_")], "params": sorted(plan.params)}
