"""`same-nb verify`, second half: run each step's code in the clean venv of its lock, fed the inputs and
parameters of the notebook's last successful local run of that step, and compare its outputs' sha256
with what that run recorded.

Imports alone miss what a step loads while it runs (``load_iris(as_frame=True)`` needs pandas though
nothing imports it). Every step takes its inputs from the store, not from another step of this check,
so all steps are independent and run concurrently (bounded by ``jobs``). Each runs in a scratch folder
``.same/verify/<step>/``: its spec, result, executed notebook and log, and an artifact store holding
links to its inputs, so outputs that differ never enter the notebook's own store.
"""
from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib import metadata
from pathlib import Path
from typing import Callable

from same_nb.envs.lock import LockResult
from same_nb.envs.verify import RunCheck, ensure_kernel_venv, runtime_copy
from same_nb.errors import SameError

NOT_RUN = "no successful local run to take inputs from; run `same-nb run {notebook}` first"


def kernel_extras() -> list[str]:
    """What the runtime itself needs in a kernel to pass values (as ``run --isolated`` installs)."""
    extra = []
    for dist in ("cloudpickle", "pyarrow"):
        try:
            extra.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return extra


def _last_success(store, notebook: Path, step: str) -> tuple[dict, dict] | None:
    """(run, step run) of the step's latest finished run, when that run succeeded."""
    last = store.last_step_run(notebook, step)
    if last is None or last.get("status") != "success":
        return None
    run = store.get_run(last["run_id"])
    if run is None:
        return None
    step_run = next((s for s in run["steps"] if s["id"] == last["id"]), None)
    return (run, step_run) if step_run is not None else None


def _link_inputs(inputs: dict[str, dict], source: Path, scratch: Path) -> list[str]:
    """Put each input artifact into the scratch store (a symlink, else a copy); names the missing ones."""
    missing = []
    for name, rec in inputs.items():
        sha = rec["sha256"]
        src, dst = source / sha[:2] / sha, scratch / sha[:2] / sha
        if not src.is_file():
            missing.append(name)
            continue
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return missing


def _failure(error: dict | None) -> dict:
    error = error or {}
    return {k: error.get(k) for k in ("ename", "evalue", "cell", "line", "where")}


class _Check:
    """One step: its venv, its kernel, its run, the comparison."""

    def __init__(self, name: str, *, notebook: Path, prepared, lock, runtime_root: Path, scratch: Path,
                 last: tuple[dict, dict], extra: list[str], timeout: float | None, consumers: dict):
        self.name, self.notebook, self.prepared, self.lock = name, notebook, prepared, lock
        self.runtime_root, self.scratch, self.extra, self.timeout = runtime_root, scratch, extra, timeout
        self.run, self.step_run = last
        self.consumers = consumers

    def __call__(self) -> RunCheck:
        started = time.perf_counter()
        check = RunCheck(status="ok", run_id=self.run["id"])
        try:
            self._check(check)
        except SameError as exc:
            check.status = "failed"
            check.failures.append({"ename": "EnvironmentError", "evalue": exc.message, "cell": None,
                                   "line": None, "where": "environment"})
        check.seconds = time.perf_counter() - started
        return check

    def _outputs(self) -> dict[str, list[str]]:
        # Exactly the runner's (local/runner.py), in its order: a group artifact's bytes follow that order.
        return {o: sorted(self.consumers[(p, o)]) for (p, o) in self.consumers if p == self.name}

    def _check(self, check: RunCheck) -> None:
        from same_nb.local.cache import cache_info
        from same_nb.local.execute import run_step_notebook, write_spec
        from same_nb.local.kernels import start_warm_kernel

        pipeline = self.prepared.pipeline
        step = pipeline.step(self.name)
        run_id = self.run["id"]
        inputs = {r["name"]: dict(r) for r in self.step_run["inputs"] if r.get("role") == "variable"}
        expected = {r["name"]: r for r in self.step_run["outputs"] if r.get("role") == "variable"}
        code = cache_info(pipeline, step, inputs={}, params={}, outputs=[], packages={}, env={})["code"]
        changed = bool(self.step_run.get("code_sha256")) and self.step_run["code_sha256"] != code
        if changed:
            check.notes.append(f"the step's code changed since run {run_id}: outputs not compared")
        shutil.rmtree(self.scratch, ignore_errors=True)
        store_root = self.scratch / "artifacts"
        missing = _link_inputs(inputs, self.notebook.parent / ".same" / "artifacts", store_root)
        if missing:
            check.status = "not-run"
            check.notes.append(f"input {', '.join(missing)} of run {run_id} is no longer in .same/artifacts; "
                               f"run `same-nb run {self.notebook.name}` again")
            return
        python = ensure_kernel_venv(self.lock, self.notebook.parent, extra_packages=self.extra)
        check.python = str(python)
        spec, result = self.scratch / "spec.json", self.scratch / "result.json"
        position = {s.name: i for i, s in enumerate(pipeline.steps)}
        write_spec(spec, step=self.name, store_root=store_root.resolve(), inputs=inputs,
                   outputs=self._outputs(),
                   watch=step.watch, result=result, metrics=pipeline.metrics,
                   verify=pipeline.verified_inputs(self.name),
                   state_check=position[self.name] < len(pipeline.steps) - 1,
                   later=[s.name for s in pipeline.steps if position[s.name] > position[self.name]])
        params = {k: self.run["params"][k] for k in step.params if k in self.run["params"]}
        config = self.prepared.config
        # PYTHONPATH "": the kernel sees its venv and the runtime copy, nothing from this environment.
        env = {"PYTHONHASHSEED": "0", **config.get("env", {}), **config.get("step_env", {}).get(self.name, {}),
               "PYTHONPATH": "", "PYTHONHOME": "", "VIRTUAL_ENV": ""}
        kernel = start_warm_kernel(self.name, kernel_name=pipeline.kernel, cwd=str(self.notebook.parent),
                                   env=env, modules=[], extra_path=[str(self.runtime_root)], python=str(python),
                                   log=str(self.scratch / "kernel.log"))
        try:
            outcome = run_step_notebook(notebook=self.prepared.bundle_dir / "steps" / f"{self.name}.ipynb",
                                        executed=self.scratch / f"{self.name}.ipynb", spec_path=spec,
                                        result_path=result, params=params, kernel=kernel,
                                        kernel_name=pipeline.kernel, log_path=self.scratch / "log.txt",
                                        timeout=self.timeout)
        finally:
            kernel.shutdown()
        if not outcome.ok:
            check.status = "failed"
            check.failures.append(_failure(outcome.error))
            return
        if outcome.stopped is not None:
            check.notes.append("the step ended the notebook with sys.exit(0); no outputs to compare")
            return
        for name, rec in sorted(expected.items()):
            got = outcome.outputs.get(name, {}).get("sha256")
            if got != rec["sha256"]:
                check.differs[name] = {"run": run_id, "expected": rec["sha256"], "got": got}
        if check.differs and not changed:
            check.status = "differs"
        elif check.differs:
            check.notes.append("outputs that differ: " + ", ".join(sorted(check.differs)))
            check.differs = {}


def run_checks(notebook: Path, prepared, locks: LockResult, *, jobs: int = 2, timeout: float | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, RunCheck]:
    """Run every step of ``prepared`` in the kernel venv of its lock in ``locks``; step → its check.
    A step without a successful local run is ``not-run`` with the hint to run the notebook first."""
    from same_nb.store.database import open_store

    progress = progress or (lambda message: None)
    notebook = Path(notebook).resolve()
    pipeline = prepared.pipeline
    consumers: dict[tuple[str, str], list[str]] = {}
    for s in pipeline.steps:
        for i in s.variable_inputs:
            consumers.setdefault((i.producer, i.name), []).append(s.name)
    store = open_store(notebook_dir=notebook.parent)
    checks: dict[str, RunCheck] = {}
    todo: dict[str, _Check] = {}
    runtime_root = runtime_copy(notebook.parent)
    extra = kernel_extras()
    try:
        for step in pipeline.steps:
            last = _last_success(store, notebook, step.name)
            lock = locks.steps.get(step.name)
            if last is None or lock is None:
                checks[step.name] = RunCheck(status="not-run", notes=[NOT_RUN.format(notebook=notebook.name)])
                continue
            todo[step.name] = _Check(step.name, notebook=notebook, prepared=prepared, lock=lock,
                                     runtime_root=runtime_root, extra=extra, timeout=timeout,
                                     scratch=notebook.parent / ".same" / "verify" / step.name, last=last,
                                     consumers=consumers)
    finally:
        store.close()
    for name, check in checks.items():
        progress(f"verify run {name}: not run ({check.notes[0]})")
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="same-nb-verify") as pool:
        futures = {}
        for name, job in todo.items():
            futures[pool.submit(_announced, job, progress)] = name
        for future in as_completed(futures):
            name = futures[future]
            try:
                checks[name] = future.result()
            except Exception as exc:        # a kernel that would not start, …: that step failed
                checks[name] = RunCheck(status="failed", run_id=todo[name].run["id"], failures=[
                    {"ename": type(exc).__name__, "evalue": str(exc), "cell": None, "line": None,
                     "where": "runner"}])
            progress(f"verify run {name}: {_summary(checks[name])}")
    return {s.name: checks[s.name] for s in pipeline.steps}


def _announced(job: _Check, progress: Callable[[str], None]) -> RunCheck:
    progress(f"verify run {job.name}: started (inputs of run {job.run['id']})")
    return job()


def _summary(check: RunCheck) -> str:
    if check.status == "failed":
        f = check.failures[0]
        where = f" in cell {f['cell']}" + (f", line {f['line']}" if f.get("line") else "") if f.get("cell") else ""
        return f"FAILED{where} after {check.seconds:.1f} s: {f['ename']}: {f['evalue']}"
    if check.status == "differs":
        return f"outputs differ from run {check.run_id}: {', '.join(sorted(check.differs))}"
    return f"{check.status} in {check.seconds:.1f} s"
