"""The local scheduler: run steps in dependency order, independent ones concurrently, each in its own
warm kernel; reuse cached steps; record every transition in the run store.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from same_nb.frontend.dag import topological_order
from same_nb.frontend.ir import Pipeline, Step
from same_nb.local.cache import cache_info, cache_key, changed_files, corrupt_outputs, explain, packages_info

DONE = ("success", "cached")
FINAL = ("success", "cached", "failed", "skipped", "cancelled")
# Loggers that report the kernels a cancelled run shuts down ("Kernel died while waiting for execute reply").
_KERNEL_LOGGERS = ("traitlets", "papermill", "nbclient", "jupyter_client")


class RunCancelled(KeyboardInterrupt):
    """Ctrl-C (or the server's cancel) stopped run ``run_id``; its kernels are shut down."""

    def __init__(self, run_id: int):
        super().__init__(run_id)
        self.run_id = run_id


@dataclass
class RunRequest:
    notebook: Path
    pipeline: Pipeline
    bundle_dir: Path
    params: dict                          # every parameter's value for this run
    jobs: int
    use_cache: bool = True
    env: dict[str, str] = field(default_factory=dict)
    step_env: dict[str, dict[str, str]] = field(default_factory=dict)
    reuse: dict[str, dict] = field(default_factory=dict)   # step -> {"outputs": [...], "reason": str}
    snapshot: bool = False                # also save every variable (equivalence checks)
    pythons: dict[str, str] = field(default_factory=dict)  # step -> interpreter (--isolated)
    runtime_path: str | None = None       # folder holding a copy of same_nb.runtime for isolated kernels
    openlineage: dict | None = None       # OpenLineage transport config, when configured
    spare_kernel: object = None           # future of a kernel started while compiling
    timeout: float | None = None
    kernel: str = "fresh"                 # "fork": kernels forked from a zygote (local/forked.py)


@dataclass
class StepState:
    name: str
    status: str = "pending"
    reason: str = ""
    seconds: float = 0.0                  # wall time, as the store's duration_s
    started_at: float | None = None
    kernel_wait_s: float | None = None    # of it, waiting for the step's kernel to start and warm up
    compute_s: float | None = None        # of it, the step notebook's cells executing
    cache_hit: bool = False
    outputs: dict[str, dict] = field(default_factory=dict)
    inputs: list[dict] = field(default_factory=list)
    error: dict | None = None
    warnings: list[dict] = field(default_factory=list)
    executed: Path | None = None
    log: Path | None = None
    step_run_id: int | None = None
    metrics: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)      # cache key components
    key: str = ""

class Runner:
    def __init__(self, req: RunRequest, store, run_id: int, run_dir: Path, progress):
        self.req = req
        self.p = req.pipeline
        self.store = store
        self.run_id = run_id
        self.run_dir = run_dir
        self.progress = progress
        self.artifacts = req.notebook.parent / ".same" / "artifacts"
        self.order = topological_order([s.name for s in self.p.steps], self.p.edges)
        self.states = {n: StepState(n) for n in self.order}
        self.upstream = {n: self.p.upstream(n) for n in self.order}
        self.consumers: dict[tuple[str, str], list[str]] = {}
        for s in self.p.steps:
            for i in s.variable_inputs:
                self.consumers.setdefault((i.producer, i.name), []).append(s.name)
        self.position = {s.name: i for i, s in enumerate(self.p.steps)}     # notebook order
        self.ancestors = _ancestors(self.order, self.upstream)
        self.touched: dict[str, list[tuple[str, str]]] = {}   # file -> [(step, "read" | "write")]
        self.learned: list[dict] = []                         # effects this run observed
        self.observed: dict[str, dict] = {}                   # step -> what it loaded and passed on
        self.stopped: set[str] = set()                        # skipped because a step called sys.exit(0)
        self.pool = None
        self.running: dict[Future, str] = {}
        self.kernels: dict[str, object] = {}

    # -- public ---------------------------------------------------------------------------------
    def run(self) -> dict[str, StepState]:
        ids = self.store.add_step_runs(self.run_id, self.order)
        for name, sid in ids.items():
            self.states[name].step_run_id = sid
        self.progress.start(self.order, self.states)
        executor = ThreadPoolExecutor(max_workers=max(1, self.req.jobs), thread_name_prefix="same-nb-step")
        silenced: list = []
        try:
            self._loop(executor)
        except KeyboardInterrupt:
            stopping = getattr(self.progress, "stopping", None)
            if stopping is not None:
                stopping()
            silenced = _silence(_KERNEL_LOGGERS)
            self._cancel()
            self.observed.clear()       # a cancelled run stops now; the next run records what steps load
            raise RunCancelled(self.run_id) from None
        finally:
            if self.pool is not None:
                self.pool.close()
            executor.shutdown(wait=True, cancel_futures=True)
            for logger, disabled in silenced:
                logger.disabled = disabled
            if self.learned:
                from same_nb.store.learned import record_learned

                record_learned(self.req.notebook, self.learned)
            if self.observed:
                from same_nb.store.observed import record_observed

                record_observed(self.req.notebook, self.observed)
        return self.states

    # -- scheduling -----------------------------------------------------------------------------
    def _loop(self, executor: ThreadPoolExecutor) -> None:
        while True:
            progressed = self._start_ready(executor)
            if not self.running:
                if progressed:
                    continue
                break
            done, _ = wait(list(self.running), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                self._finish(self.running.pop(fut), fut)
            self.progress.tick(self.states)

    def _start_ready(self, executor: ThreadPoolExecutor) -> bool:
        progressed = False
        for name in self.order:
            st = self.states[name]
            if st.status != "pending":
                continue
            ups = [self.states[u] for u in self.upstream[name]]
            if any(u.status in ("failed", "skipped", "cancelled") for u in ups):
                bad = next(u.name for u in ups if u.status in ("failed", "skipped", "cancelled"))
                self._skip(name, f"upstream step {bad} did not succeed")
                progressed = True
                continue
            if not all(u.status in DONE for u in ups):
                continue
            if len(self.running) >= self.req.jobs:
                break
            progressed = True
            if self._try_cache(name):
                continue
            st.status = "running"
            st.started_at = time.time()
            self.progress.update(name, st)
            self._kernel_pool().prepare([name] + self._upcoming())
            self.running[executor.submit(self._execute, name)] = name
        return progressed

    def _upcoming(self) -> list[str]:
        """Pending steps in execution order: their kernels warm up while earlier steps compute."""
        return [n for n in self.order if self.states[n].status == "pending"]

    # -- cache ----------------------------------------------------------------------------------
    def _inputs_of(self, step: Step) -> dict[str, dict]:
        out = {}
        for i in step.variable_inputs:
            rec = dict(self.states[i.producer].outputs[i.name])
            out[i.name] = rec
        return out

    def _prepare_key(self, name: str) -> None:
        step = self.p.step(name)
        st = self.states[name]
        inputs = self._inputs_of(step)
        params = {k: self.req.params.get(k) for k in step.params}
        outputs = sorted({o for (prod, o) in self.consumers if prod == name})
        env = {**self.req.env, **self.req.step_env.get(name, {})}
        st.info = cache_info(self.p, step, inputs={k: v["sha256"] for k, v in inputs.items()}, params=params,
                             outputs=outputs, packages=packages_info(step, self.req.notebook.parent), env=env)
        st.key = cache_key(st.info)
        st.inputs = [{**v, "name": k, "role": "variable"} for k, v in inputs.items()]

    def _try_cache(self, name: str) -> bool:
        st = self.states[name]
        looked_up = time.time()
        self._prepare_key(name)
        reused = self.req.reuse.get(name)
        hit, files = None, []
        if reused is not None:
            hit, reason = reused, reused["reason"]
        elif self.req.use_cache:
            hit = self.store.find_cached(st.key)
            reason = f"reused from run {hit['run_id']}" if hit else ""
            # The files it read count as inputs: the cached record keeps them for the next lookup.
            files = self.store.step_file_inputs(hit["step_run_id"]) if hit else []
            changed = changed_files(files, self.req.notebook.parent)
            if changed:
                st.reason = f"file {changed[0]} changed since run {hit['run_id']}"
                return False
            needed = {o for (prod, o) in self.consumers if prod == name}
            lacking = sorted(needed - {o["name"] for o in hit["outputs"]}) if hit else []
            if lacking:    # e.g. that run stopped at sys.exit(0) before saving
                st.reason = f"the cached run {hit['run_id']} did not save {lacking[0]}"
                return False
            corrupt = corrupt_outputs(hit["outputs"]) if hit else []
            if corrupt:  # a miss: re-running the producer rewrites the artifact under its hash
                st.reason = f"cached output {corrupt[0]} is corrupt (hash differs)"
                return False
        if hit is None:
            previous = self.store.last_step_run(str(self.req.notebook.resolve()), name)
            producers = {i.name: i.producer for i in self.p.step(name).variable_inputs}
            if not self.req.use_cache:
                st.reason = "--no-cache"
            elif previous and previous["cache_key"] == st.key and previous["status"] not in DONE:
                # Nothing changed since: the reason is that it did not finish (failed, interrupted, ...).
                st.reason = f"{previous['status']} in run {previous['run_id']}"
            else:
                st.reason = explain(st.info, (previous or {}).get("cache_info"), producers)
            return False
        st.status, st.cache_hit, st.reason = "cached", True, reason
        st.outputs = {o["name"]: {k: o[k] for k in ("sha256", "kind", "type", "size", "location") if k in o}
                      for o in hit["outputs"] if o.get("role") in (None, "variable")}
        self.store.start_step(st.step_run_id, cache_key=st.key, cache_info=st.info, reason=reason,
                              code_sha256=st.info["code"])
        st.seconds = time.time() - looked_up
        self.store.finish_step(st.step_run_id, status="cached", inputs=st.inputs + files,
                               outputs=[{**v, "name": k, "role": "variable"} for k, v in st.outputs.items()],
                               executed_notebook=None, log_path=None, cache_hit=True,
                               metrics_from=hit.get("step_run_id"), duration_s=st.seconds)
        if self.pool is not None:
            self.pool.discard(name)
        self.progress.update(name, st)
        return True

    def _emit(self, name: str, event: str) -> None:
        if self.req.openlineage:
            from same_nb.store.openlineage import emit_step_event

            emit_step_event(self.req.openlineage, {"id": self.run_id, "pipeline_name": self.p.name,
                                                   "notebook_path": str(self.req.notebook)},
                            self.states[name], event)

    # -- execution ------------------------------------------------------------------------------
    def _kernel_pool(self):
        if self.pool is None:
            from same_nb.local.zygotes import pool_for_run

            self.pool = pool_for_run(self.req, self._kernel_log, self.run_dir / "kernels.json")
            # The first step would otherwise import papermill (~1 s) while its kernel is ready.
            threading.Thread(target=_import_executor, daemon=True).start()
        return self.pool

    def _kernel_log(self, name: str) -> str:
        path = self.run_dir / "steps" / name / "kernel.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def _execute(self, name: str):
        from same_nb.local.execute import run_step_notebook, write_spec

        st = self.states[name]
        step = self.p.step(name)
        sdir = self.run_dir / "steps" / name
        spec, result = sdir / "spec.json", sdir / "result.json"
        outputs = {o: sorted(self.consumers[(name, o)]) for (prod, o) in self.consumers if prod == name}
        write_spec(spec, step=name, store_root=self.artifacts.resolve(),
                   inputs={r["name"]: r for r in st.inputs}, outputs=outputs, watch=step.watch, result=result,
                   snapshot=[] if self.req.snapshot else None, metrics=self.p.metrics,
                   verify=self._verify(step), state_check=self._state_check(step),
                   later=[s.name for s in self.p.steps if self.position[s.name] > self.position[name]])
        st.executed, st.log = self.run_dir / "steps" / f"{name}.ipynb", sdir / "log.txt"
        self.store.start_step(st.step_run_id, cache_key=st.key, cache_info=st.info, reason=st.reason,
                              code_sha256=st.info["code"])
        self._emit(name, "START")
        waited = time.perf_counter()
        kernel = self._kernel_pool().take(name)
        st.kernel_wait_s = time.perf_counter() - waited
        self.kernels[name] = kernel
        try:
            params = {k: self.req.params[k] for k in step.params}
            return run_step_notebook(notebook=self.req.bundle_dir / "steps" / f"{name}.ipynb",
                                     executed=st.executed, spec_path=spec, result_path=result, params=params,
                                     kernel=kernel, kernel_name=self.p.kernel, log_path=st.log,
                                     timeout=self.req.timeout)
        finally:
            self.kernels.pop(name, None)
            # Shutting a kernel down takes ~0.2 s: do it off the critical path.
            threading.Thread(target=kernel.shutdown, daemon=True).start()

    def _verify(self, step: Step) -> dict[str, dict]:
        return self.p.verified_inputs(step.name)

    def _state_check(self, step: Step) -> bool:
        """Process state a step changes unplanned reaches nobody when no step comes after it."""
        return self.position[step.name] < len(self.p.steps) - 1

    def _learn_from(self, name: str, result_path: Path) -> None:
        """A step that failed on an unplanned change leaves it in its result: keep it for next time."""
        import json

        try:
            unplanned = json.loads(result_path.read_text()).get("unplanned", [])
        except (OSError, ValueError):
            return
        self.learned += [{"kind": "mutation", "step": name, "name": u["name"], "how": u.get("how"),
                          "run": self.run_id, **({"via": u["via"]} if u.get("via") else {})}
                         for u in unplanned if u.get("kind", "mutation") == "mutation"]

    def _file_hazard(self, name: str, files_in: list[dict], files_out: list[dict]) -> str | None:
        """Two steps of this run touched one file, at least one writing it, without one waiting for the
        other: the reader may have seen a stale copy, or the writes may land in either order."""
        mine = [(r["name"], "read") for r in files_in if r.get("role") == "file"]
        mine += [(r["name"], "write") for r in files_out if r.get("role") == "file"]
        problem = None
        for path, mode in mine:
            for other, other_mode in self.touched.get(path, []):
                if other == name or "write" not in (mode, other_mode):
                    continue
                if other in self.ancestors[name] or name in self.ancestors[other]:
                    continue
                first, second = sorted((name, other), key=self.position.get)
                self.learned.append({"kind": "order", "before": first, "after": second, "run": self.run_id,
                                     "why": f"file {path}"})
                if problem is None:
                    writer = name if mode == "write" else other
                    problem = (f"steps '{first}' and '{second}' both used the file {path} ('{writer}' wrote "
                               f"it) but neither waits for the other, so the result depends on timing; a "
                               f"top-to-bottom run does '{first}' first. same-nb has learned this: run "
                               f"again and '{second}' will run after '{first}'. To make it explicit, tag "
                               f"the first cell of '{second}' with after:{first}.")
        for path, mode in mine:
            self.touched.setdefault(path, []).append((name, mode))
        return problem

    def _finish(self, name: str, fut: Future) -> None:
        from same_nb.local.execute import with_install_hint

        st = self.states[name]
        try:
            outcome = fut.result()
        except Exception as exc:
            from same_nb.local.execute import StepOutcome
            outcome = StepOutcome(ok=False, seconds=time.time() - (st.started_at or time.time()),
                                  error={"ename": type(exc).__name__, "evalue": str(exc), "where": "runner",
                                         "cell": None, "cell_id": None, "line": None, "traceback": ""})
        # One wall time for the live table, the summary and the store: from the step's start, kernel wait included.
        st.seconds = time.time() - (st.started_at or time.time())
        st.compute_s = outcome.compute_s
        st.warnings = outcome.warnings
        st.metrics = [{**m, "logged_at": datetime.fromtimestamp(m["logged_at"], timezone.utc)}
                      for m in outcome.metrics]
        if outcome.ok and outcome.stopped is not None:
            st.status = "success"
            where = f" in cell {outcome.stopped['cell']}" if outcome.stopped.get("cell") else ""
            st.reason = f"called sys.exit(0){where}: the notebook ends here"
            self._stop_after(name, f"step '{name}' ended the notebook with sys.exit(0){where}, as a "
                                   f"top-to-bottom run would")
        elif outcome.ok:
            st.status = "success"
            st.outputs = outcome.outputs
            for rec in st.outputs.values():
                rec.setdefault("location", str(self.artifacts.resolve() / rec["sha256"][:2] / rec["sha256"]))
        else:
            # `verify` runs steps against their locks, where the fix is the lock: only runs get the pip hint.
            st.status, st.error = "failed", with_install_hint(outcome.error)
            self._learn_from(name, self.run_dir / "steps" / name / "result.json")
            if (st.error or {}).get("ename") == "MissingOutputError":
                from same_nb.local.missing import explain_missing, missing_names

                names = missing_names(st.error.get("evalue", ""))
                if names:
                    st.error["evalue"] += " " + explain_missing(self.p.step(name), names)
        from same_nb.runtime.fileio import result_records  # files read/written, datasets used

        files_in, files_out = result_records(str(self.run_dir / "steps" / name / "result.json"),
                                             {r["name"] for r in st.inputs} | set(st.outputs))
        hazard = self._file_hazard(name, files_in, files_out) if st.status == "success" else None
        if hazard:
            st.status, st.error = "failed", {"ename": "FileOrderError", "evalue": hazard, "where": "files",
                                             "cell": None, "cell_id": None, "line": None, "traceback": ""}
        observation = outcome.observation(self.run_id) if st.status == "success" else None
        if observation:
            self.observed[name] = observation       # what the step's lock must hold (store/observed.py)
        self.store.finish_step(st.step_run_id, status=st.status, inputs=st.inputs + files_in,
                               outputs=[{**v, "name": k, "role": "variable"} for k, v in st.outputs.items()]
                               + files_out,
                               executed_notebook=str(st.executed), log_path=str(st.log), error=st.error,
                               metrics=st.metrics, duration_s=st.seconds, kernel_wait_s=st.kernel_wait_s,
                               compute_s=st.compute_s, resources=outcome.resources)
        self._emit(name, "COMPLETE" if st.status == "success" else "FAIL")
        self.progress.update(name, st)

    def _stop_after(self, name: str, reason: str) -> None:
        """Steps after ``name`` in notebook order never run: the notebook stopped there."""
        for later in self.p.steps[self.position[name] + 1:]:
            if self.states[later.name].status == "pending":
                self._skip(later.name, reason)
                self.stopped.add(later.name)

    def _skip(self, name: str, reason: str) -> None:
        st = self.states[name]
        st.status, st.reason = "skipped", reason
        self.store.mark_steps(self.run_id, [name], "skipped")
        self.progress.update(name, st)

    def _cancel(self) -> None:
        for kernel in list(self.kernels.values()):
            kernel.shutdown()
        names = [n for n, s in self.states.items() if s.status in ("pending", "running")]
        for n in names:
            self.states[n].status = "cancelled"
        if names:
            self.store.mark_steps(self.run_id, names, "cancelled")


def _silence(names: tuple[str, ...]) -> list:
    """Disable these loggers; returns what to restore."""
    import logging

    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.disabled))
        logger.disabled = True
    return saved


def _ancestors(order: list[str], upstream: dict[str, list[str]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name in order:                      # topological: every upstream step is done already
        found[name] = set(upstream[name]).union(*(found[u] for u in upstream[name]))
    return found


def _import_executor() -> None:
    import papermill  # noqa: F401


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
