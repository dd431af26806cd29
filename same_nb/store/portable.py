"""What recording a run writes, and the cache lookups, written ONCE for both ways into the store.

``Store`` (database.py, SQLAlchemy over SQLite or PostgreSQL) and ``LeanStore`` (lean.py, the
standard library's sqlite3, for fully cached reruns) both take these methods. They differ only in
the few primitives a subclass provides, which translate mechanically and hold no knowledge of
what a run records:

- ``_writes()``: a context manager yielding a writer with
  ``insert(table, rows, returning=(), ignore=False)``, ``update(table, values, **where)`` (returns the
  row count), ``first(table, columns, **where)`` and ``copy(table, columns, where=, values=, order_by=)``
  (INSERT … SELECT of some rows of a table into itself, some columns replaced);
- ``_query(sql, params)``: rows of one of the portable read statements below, as dicts.

So a column added to what a run records is added here, and both paths write it.
Standard library only.
"""
from __future__ import annotations

import hashlib
import os
import socket
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from same_nb.errors import SameError
from same_nb.store.host import git_commit, process_started, user
from same_nb.store.resources import step_resources
from same_nb.store.rows import (
    RUN_STATUSES,
    STEP_STATUSES,
    artifact_row,
    as_str,
    check_choice,
    check_json,
    edge_row,
    metric_row,
    utc_now,
)

TARGETS = ("local", "kubeflow")
ACTIVE = ("pending", "running")

# Portable SQL (SQLite and PostgreSQL): the newest successful step runs with a cache key, and their
# recorded artifacts. A bounded scan: older hits are rarely still on disk. Runs that computed the step
# come before cache hits of it (same outputs): a hit then names the run that computed it, not the
# last of a chain of hits.
_CANDIDATES = ("FROM step_runs WHERE cache_key = :cache_key AND status IN ('success', 'cached') "
               "ORDER BY CASE WHEN status = 'success' THEN 0 ELSE 1 END, finished_at DESC, id DESC LIMIT 20")
FIND_CACHED_SQL = "SELECT id, run_id " + _CANDIDATES
_EDGES = ("SELECT e.step_run_id, e.name, e.artifact_sha256 AS sha256, a.kind, a.type, a.size, a.location, e.role "
          "FROM step_run_artifacts e JOIN artifacts a ON a.sha256 = e.artifact_sha256 ")
CACHED_OUTPUTS_SQL = (_EDGES + f"WHERE e.step_run_id IN (SELECT id {_CANDIDATES}) AND e.direction = 'out' "
                      "ORDER BY e.name")
FILE_INPUTS_SQL = (_EDGES + "WHERE e.step_run_id = :step_run_id AND e.direction = 'in' "
                   "AND e.role IN ('file', 'dataset') ORDER BY e.name")
_RECORD = ("name", "sha256", "kind", "type", "size", "location", "role")


class CacheReads:
    """The cache lookups of a run (``_query`` comes from the store)."""

    def find_cached(self, cache_key: str) -> dict | None:
        """The newest successful step run with this key whose output files all still exist."""
        candidates = self._query(FIND_CACHED_SQL, {"cache_key": cache_key})
        edges = self._query(CACHED_OUTPUTS_SQL, {"cache_key": cache_key}) if candidates else []
        for candidate in candidates:
            outputs = [{k: e[k] for k in _RECORD} for e in edges if e["step_run_id"] == candidate["id"]]
            if all(o["location"] and Path(o["location"]).exists() for o in outputs):
                return {"step_run_id": candidate["id"], "run_id": candidate["run_id"], "outputs": outputs}
        return None

    def step_file_inputs(self, step_run_id: int) -> list[dict]:
        """The files and datasets a step run read: a cache hit is valid only if they are unchanged."""
        return [{k: e[k] for k in _RECORD} for e in self._query(FILE_INPUTS_SQL, {"step_run_id": step_run_id})]


class RunWrites:
    """A run's records from creation to finish (``_writes`` comes from the store)."""

    def create_run(self, *, notebook_path: str | Path, notebook_sha256: str, pipeline_name: str,
                   params: dict[str, Any], target: str, run_dir_root: Path, sweep_id: str | None = None) -> int:
        """Record a new running run driven by this process; return its number. ``sweep_id``: the
        parameter sweep the run is one grid point of."""
        check_choice("target", target, TARGETS)
        check_json(f"parameters of pipeline {pipeline_name!r}", params)
        notebook = Path(notebook_path).resolve()
        now, pid = utc_now(), os.getpid()
        row = dict(notebook_path=str(notebook), notebook_sha256=notebook_sha256,
                   pipeline_name=pipeline_name, params=params, target=target, status="running",
                   created_at=now, started_at=now, git_commit=git_commit(notebook.parent),
                   user=user(), host=socket.gethostname(), pid=pid,
                   pid_started=process_started(pid))
        if sweep_id is not None:
            row["sweep_id"] = as_str(sweep_id)
        source = _notebook_bytes(notebook, notebook_sha256)
        with self._writes() as w:
            run_id = w.insert("runs", [row], returning=("id",))[0][0]
            run_dir = Path(run_dir_root).resolve() / str(run_id)
            w.update("runs", {"run_dir": str(run_dir)}, id=run_id)
            if source is not None:
                w.insert("notebook_snapshots", [dict(sha256=notebook_sha256, content=source, created_at=now)],
                         ignore=True)
        return run_id

    def add_step_runs(self, run_id: int, step_names: Iterable[str]) -> dict[str, int]:
        """Add one pending step run per name; return {step name: step run id}."""
        names = list(step_names)
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)
        if dupes:
            raise SameError(f"run {run_id}: duplicate step names {dupes}")
        if not names:
            return {}
        with self._writes() as w:
            _require(w.first("runs", ("id",), id=run_id), f"no run {run_id}")
            rows = w.insert("step_runs", [dict(run_id=run_id, step_name=n, status="pending", cache_hit=False)
                                          for n in names], returning=("id", "step_name"))
        return {name: step_run_id for step_run_id, name in rows}

    def start_step(self, step_run_id: int, *, cache_key: str | None, cache_info: dict | None,
                   reason: str | None, code_sha256: str | None) -> None:
        check_json(f"cache info of step run {step_run_id}", cache_info)
        with self._writes() as w:
            _require(w.update("step_runs", dict(status="running", started_at=utc_now(), cache_key=cache_key,
                                                cache_info=cache_info, reason=reason, code_sha256=code_sha256),
                              id=step_run_id), f"no step run {step_run_id}")

    def finish_step(self, step_run_id: int, *, status: str, inputs: list[dict], outputs: list[dict],
                    executed_notebook: str | Path | None, log_path: str | Path | None,
                    error: dict | None = None, cache_hit: bool = False,
                    metrics: Iterable[dict] = (), metrics_from: int | None = None,
                    duration_s: float | None = None, kernel_wait_s: float | None = None,
                    compute_s: float | None = None, resources: dict | None = None) -> None:
        """Record a step's end, its artifacts, lineage edges and metrics in ONE transaction.

        ``duration_s``: the wall time as the caller measured (and showed) it; by default, since
        :meth:`start_step`. ``kernel_wait_s`` and ``compute_s`` are parts of it.

        ``metrics_from``: the step run a cache hit reused; its metrics are copied, so the new
        step run shows, compares and exports them like the run that computed them.

        ``resources``: ``{peak_rss_bytes, cpu_s}`` as the kernel measured them; bytes in and out
        come from the records (``store/resources.py``)."""
        check_choice("step status", status, STEP_STATUSES)
        check_json(f"error of step run {step_run_id}", error)
        edges = ([edge_row(step_run_id, "in", r) for r in inputs]
                 + [edge_row(step_run_id, "out", r) for r in outputs])
        now = utc_now()
        arts = {r["sha256"]: artifact_row(r, now) for r in [*inputs, *outputs]}
        metric_rows = [metric_row(step_run_id, m, now) for m in metrics]
        with self._writes() as w:
            started = w.first("step_runs", ("started_at",), id=step_run_id)
            _require(started, f"no step run {step_run_id}")
            duration = duration_s
            if duration is None and started[0]:
                duration = (now - started[0]).total_seconds()
            w.update("step_runs", dict(status=status, finished_at=now, duration_s=duration, cache_hit=cache_hit,
                                       executed_notebook=as_str(executed_notebook), log_path=as_str(log_path),
                                       error=error, kernel_wait_s=kernel_wait_s, compute_s=compute_s,
                                       **step_resources(status=status, inputs=inputs, outputs=outputs,
                                                        measured=resources)),
                     id=step_run_id)
            if arts:
                w.insert("artifacts", list(arts.values()), ignore=True)
            if edges:
                w.insert("step_run_artifacts", edges)
            if metric_rows:
                w.insert("metrics", metric_rows)
            if metrics_from is not None:
                w.copy("metrics", ("name", "value", "step", "logged_at"), where={"step_run_id": metrics_from},
                       values={"step_run_id": step_run_id}, order_by="id")

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        check_choice("run status", status, RUN_STATUSES)
        finished = None if status in ACTIVE else utc_now()
        with self._writes() as w:
            _require(w.update("runs", dict(status=status, finished_at=finished, error=error), id=run_id),
                     f"no run {run_id}")


def _notebook_bytes(notebook: Path, sha256: str) -> bytes | None:
    """The notebook's bytes when they still hash to ``sha256`` (edited since compiling: None)."""
    try:
        raw = notebook.read_bytes()
    except OSError:
        return None
    return raw if hashlib.sha256(raw).hexdigest() == sha256 else None


def _require(found: Any, message: str) -> None:
    if not found:
        raise SameError(message)
