"""The run store's reads: runs with their steps, artifacts and metrics, what to resume (the cache
lookups are in portable.py).

``Store`` (database.py) takes these methods from :class:`RunReads`; they use its ``_tx``.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from same_nb.errors import SameError
from same_nb.store.rows import utc_now
from same_nb.store.schema import artifacts, runs, step_run_artifacts, step_runs
from same_nb.store.schema import metrics as metrics_table

RESUMABLE_STEP_STATUSES = ("failed", "skipped", "cancelled", "interrupted", "pending")
MAX_RUN_ID = 2**63 - 1         # the largest id SQLite and PostgreSQL (bigint) can hold


class RunReads:
    """The queries of :class:`same_nb.store.database.Store`."""

    def list_runs(self, limit: int = 50, offset: int = 0, notebook_path: str | Path | None = None,
                  folder: str | Path | None = None) -> list[dict]:
        """Runs newest first, each with ``step_counts`` ({status: n}), ``duration_s`` and
        ``metrics`` ({"step.metric": last value}); only the runs of one notebook, or of the
        notebooks directly in ``folder`` (a store shared by several folders, or by several Jupyter
        servers, holds others)."""
        if limit < 0 or offset < 0:
            raise SameError(f"invalid page: limit {limit}, offset {offset} must be >= 0")
        query = _scoped(select(runs), notebook_path, folder).order_by(runs.c.id.desc()).limit(limit).offset(offset)
        with self._tx(write=False) as conn:
            rows = [_run_dict(r) for r in conn.execute(query).mappings()]
            counts = conn.execute(
                select(step_runs.c.run_id, step_runs.c.status, func.count())
                .where(step_runs.c.run_id.in_([r["id"] for r in rows]))
                .group_by(step_runs.c.run_id, step_runs.c.status)).all()
            m = metrics_table.c
            logged = conn.execute(
                select(step_runs.c.run_id, step_runs.c.step_name, m.name, m.value)
                .join(step_runs).where(step_runs.c.run_id.in_([r["id"] for r in rows]))
                .order_by(m.id)).all()
        by_id = {r["id"]: r | {"metrics": {}} for r in rows}
        for run_id, status, n in counts:
            by_id[run_id]["step_counts"][status] = n
        for run_id, step_name, name, value in logged:      # by id: the last logged value wins
            by_id[run_id]["metrics"][f"{step_name}.{name}"] = value
        return list(by_id.values())

    def count_runs(self, notebook_path: str | Path | None = None, folder: str | Path | None = None) -> int:
        query = _scoped(select(func.count()).select_from(runs), notebook_path, folder)
        with self._tx(write=False) as conn:
            return conn.execute(query).scalar_one()

    def get_run(self, run_id: int) -> dict | None:
        """One run with ``step_counts`` and ``steps`` (each with inputs, outputs and metrics); None
        when there is no such run (an id no database column can hold included)."""
        if not valid_run_id(run_id):
            return None
        with self._tx(write=False) as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                return None
            steps = [dict(s) | {"inputs": [], "outputs": [], "metrics": []} for s in conn.execute(
                select(step_runs).where(step_runs.c.run_id == run_id).order_by(step_runs.c.id)
            ).mappings()]
            edges = conn.execute(_edges_query().join(
                step_runs, step_runs.c.id == step_run_artifacts.c.step_run_id).where(
                step_runs.c.run_id == run_id)).mappings().all()
            metric_rows = conn.execute(select(metrics_table).join(step_runs).where(
                step_runs.c.run_id == run_id).order_by(metrics_table.c.id)).mappings().all()
        by_id = {s["id"]: s for s in steps}
        for e in edges:
            key = "inputs" if e["direction"] == "in" else "outputs"
            by_id[e["step_run_id"]][key].append(_artifact_record(e))
        for m in metric_rows:
            by_id[m["step_run_id"]]["metrics"].append(
                {k: m[k] for k in ("name", "value", "step", "logged_at")})
        run = _run_dict(row)
        run["steps"] = steps
        for s in steps:
            run["step_counts"][s["status"]] = run["step_counts"].get(s["status"], 0) + 1
        return run

    def run_metrics(self, run_ids: Iterable[int]) -> list[dict]:
        """Every metric of the given runs: {run_id, step_name, name, value, step, logged_at}."""
        m = metrics_table.c
        query = (select(step_runs.c.run_id, step_runs.c.step_name, m.name, m.value, m.step,
                        m.logged_at)
                 .join(step_runs).where(step_runs.c.run_id.in_(list(run_ids)))
                 .order_by(step_runs.c.run_id, m.id))
        with self._tx(write=False) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def last_step_run(self, notebook_path: str | Path, step_name: str) -> dict | None:
        """The latest started-and-finished run of this step of this notebook (with cache_info)."""
        query = (select(step_runs).join(runs)
                 .where(runs.c.notebook_path == str(Path(notebook_path).resolve()),
                        step_runs.c.step_name == step_name, step_runs.c.started_at.is_not(None),
                        step_runs.c.finished_at.is_not(None))
                 .order_by(step_runs.c.finished_at.desc(), step_runs.c.id.desc()).limit(1))
        with self._tx(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def steps_to_resume(self, run_id: int) -> list[str]:
        """Names of the run's steps that did not succeed (failed, skipped, ..., pending)."""
        with self._tx(write=False) as conn:
            return list(conn.execute(
                select(step_runs.c.step_name).where(
                    step_runs.c.run_id == run_id,
                    step_runs.c.status.in_(RESUMABLE_STEP_STATUSES)).order_by(step_runs.c.id)
            ).scalars())


def valid_run_id(run_id: Any) -> bool:
    """Whether ``run_id`` is an int a run could have (1 ≤ id ≤ 2**63 - 1); larger ones overflow SQLite."""
    return isinstance(run_id, int) and not isinstance(run_id, bool) and 0 < run_id <= MAX_RUN_ID


def folder_prefix(folder: str | Path) -> str:
    """The resolved ``folder`` with a trailing separator: what its notebooks' recorded paths start with."""
    return str(Path(folder).resolve()).rstrip(os.sep) + os.sep


def _scoped(query: Any, notebook_path: str | Path | None, folder: str | Path | None) -> Any:
    if notebook_path is not None:
        query = query.where(runs.c.notebook_path == str(Path(notebook_path).resolve()))
    if folder is not None:
        # Exact prefix comparison, not LIKE: SQLite's LIKE ignores case, and '_' and '%' match more.
        prefix = folder_prefix(folder)
        path = runs.c.notebook_path
        query = query.where(func.substr(path, 1, len(prefix)) == prefix,
                            ~func.substr(path, len(prefix) + 1).contains(os.sep, autoescape=True))
    return query


def _edges_query() -> Any:
    return select(step_run_artifacts, artifacts.c.kind, artifacts.c.type, artifacts.c.size,
                  artifacts.c.location).join(artifacts).order_by(step_run_artifacts.c.name)


def _artifact_record(edge: Any) -> dict:
    return {"name": edge["name"], "sha256": edge["artifact_sha256"], "kind": edge["kind"],
            "type": edge["type"], "size": edge["size"], "location": edge["location"],
            "role": edge["role"]}


def _run_dict(row: Any) -> dict:
    run = dict(row)
    if run["started_at"] is None:
        run["duration_s"] = None
    else:
        run["duration_s"] = ((run["finished_at"] or utc_now()) - run["started_at"]).total_seconds()
    run["step_counts"] = {}
    return run

