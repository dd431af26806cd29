"""REST handlers for parameter sweeps: start one in the background, and a sweep's runs as one table
(swept values, metrics, status, the best run by a metric). Thin wrappers over :mod:`same_nb.service`
and :mod:`same_nb.background`; scope and path rules as in :mod:`same_nb.server.handlers`.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web

from same_nb.errors import SameError
from same_nb.server.handlers import MAX_JOBS, SameHandler, api_errors, belongs
from same_nb.server.paths import PathError, to_api_path

SWEEP_ID = r"([A-Za-z0-9_.-]{1,64})"
MAX_GRID_VALUES = 1000


class SweepsHandler(SameHandler):
    """POST ``{path, grid: {name: [value, ...]}, params?: {name: value}, jobs?, use_cache?}``: check the grid
    (values as text are typed like -p values), start the sweep in a detached process, answer 202 with its
    ``sweep_id`` and how many runs it starts. Each run then appears in ``GET runs`` with that sweep id."""

    @web.authenticated
    @authorized(action="execute", resource="kernels")
    @api_errors
    async def post(self) -> None:
        from same_nb.background_sweep import start_sweep
        from same_nb.service import check_param_text

        body = self.body()
        notebook = self.notebook(body.get("path"))
        grid = body.get("grid")
        if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) for v in grid.values()):
            raise SameError("grid must map each parameter to a list of values, e.g. {\"C\": [\"0.1\", \"1.0\"]}")
        if sum(len(v) for v in grid.values()) > MAX_GRID_VALUES:
            raise SameError(f"a grid holds at most {MAX_GRID_VALUES} values")
        check_param_text({str(n): str(v) for n, values in grid.items() for v in values})
        params = body.get("params") or {}
        check_param_text(params)
        jobs = body.get("jobs")
        if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= MAX_JOBS):
            raise SameError(f"jobs must be an integer from 1 to {MAX_JOBS} (got {str(jobs)[:40]})")
        started = await self.blocking(functools.partial(
            start_sweep, notebook, grid, list(params.items()), use_cache=bool(body.get("use_cache", True)),
            jobs=jobs))
        self.reply({"sweep_id": started.sweep_id, "runs": started.runs, "status": "running",
                    "path": to_api_path(self.root_dir, notebook)}, status=202)


class SweepHandler(SameHandler):
    """GET ``?path=NB|FOLDER[&best=METRIC&direction=min|max]``: the sweep's runs of that folder, oldest
    first, each with ``values`` (its swept parameters), ``metrics``, status and duration; ``best`` names
    the best run (direction by default from the metric's name: lowest for loss, error, time…)."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self, sweep_id: str) -> None:
        from same_nb.service import sweep_table

        store, _, folder = await self.store_for(self.get_query_argument("path", ""))
        best = self.get_query_argument("best", "") or None
        direction = self.get_query_argument("direction", "") or None
        if best is not None and not re.fullmatch(r"[^\x00-\x1f]{1,255}", best):
            raise SameError("best must be a metric name")
        try:
            table = await self.read_store(sweep_table, store, sweep_id, best, direction)
        except SameError as exc:
            if exc.message.startswith("there is no sweep"):
                raise PathError(exc.message, path=None, status=404) from None
            raise
        table["runs"] = [{**{k: v for k, v in r.items() if k not in ("notebook_path", "run_dir", "pid_started")},
                          "path": to_api_path(self.root_dir, r["notebook_path"])}
                         for r in table["runs"] if belongs(r, folder)]
        if not table["runs"]:
            raise PathError(f"there is no sweep {sweep_id} in this folder", path=None, status=404)
        table["process"] = _process_state(table["runs"], self.root_dir, sweep_id)
        self.reply(table)


def _process_state(rows: list[dict], root_dir: str, sweep_id: str) -> dict | None:
    """Whether the process of a sweep the server started still runs, and how many runs it plans."""
    from same_nb.background_sweep import sweep_process_state

    return sweep_process_state((Path(root_dir) / rows[0]["path"]).parent, sweep_id)


class SweepCancelHandler(SameHandler):
    """POST ``{path}``: stop a sweep the server started and answer once its process stopped (SIGINT,
    then SIGTERM, then SIGKILL, as a run's cancel): ``{sweep_id, stopped, message, runs: [{id, status}]}``;
    409 when it is not this server's to stop or has already ended."""

    @web.authenticated
    @authorized(action="execute", resource="kernels")
    @api_errors
    async def post(self, sweep_id: str) -> None:
        from same_nb.background_sweep import stop_sweep
        from same_nb.store.sweeps import sweep_runs

        body = self.body()
        store, notebook, folder = await self.store_for(body.get("path", ""))
        rows = [r for r in await self.read_store(sweep_runs, store, sweep_id) if belongs(r, folder)]
        if not rows:
            raise PathError(f"there is no sweep {sweep_id} in this folder", path=None, status=404)
        try:
            reply = await self.blocking(stop_sweep, store, Path(rows[0]["notebook_path"]).parent, sweep_id)
        except SameError as exc:
            self.reply({"message": exc.message, "error": exc.to_dict(), "sweep_id": sweep_id, "stopped": False},
                       status=409)
            return
        self.reply(reply, status=200 if reply["stopped"] else 500)
