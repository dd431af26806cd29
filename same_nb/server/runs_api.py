"""REST handlers for one run and across runs: label it, cancel it (and wait until it stopped), follow a
step's output live, compare runs. Thin wrappers over :mod:`same_nb.service` and :mod:`same_nb.background`;
scope and path rules as in :mod:`same_nb.server.handlers`.
"""
from __future__ import annotations

import re

from jupyter_server.auth.decorator import authorized
from tornado import web

from same_nb.errors import SameError
from same_nb.server.handlers import RunHandler, SameHandler, _drives, api_errors, belongs, parse_run_id
from same_nb.server.paths import PathError, read_confined, runs_folder, to_api_path

MAX_COMPARE = 20
MAX_LOG_CHARS = 1_000_000
_RUN_LIST = re.compile(r"[0-9]{1,19}(,[0-9]{1,19}){0,99}")


class LabeledRunHandler(RunHandler):
    """GET a run; POST ``{path, name?, note?}`` sets its label and note (null clears one) and answers the run."""

    @web.authenticated
    @authorized(action="write", resource="contents")
    @api_errors
    async def post(self, run_id: str) -> None:
        from same_nb.service import label_run

        body = self.body()
        store, _, folder = await self.store_for(body.get("path", ""))
        run = await self.run_in(store, run_id, folder)
        changes = {k: body[k] for k in ("name", "note") if k in body}
        if not changes:
            raise SameError("give a 'name' or a 'note' to set (null clears it)")
        labeled = await self.read_store(lambda: label_run(store, run["id"], **changes))
        self.reply(self.api_run(labeled, folder))


class CancelHandler(SameHandler):
    """Cancel a background run and answer once it stopped (SIGINT, then SIGTERM, then SIGKILL)."""

    @web.authenticated
    @authorized(action="execute", resource="kernels")
    @api_errors
    async def post(self, run_id: str) -> None:
        from same_nb.background import stop_run

        body = self.body()
        store, _, folder = await self.store_for(body.get("path", ""))
        run = await self.run_in(store, run_id, folder)
        try:
            if not _drives(run):
                raise SameError(f"run {run['id']} was not started in the background here (its process runs "
                                "another notebook); stop it where it was started")
            stopped = await self.blocking(stop_run, store, run)
        except SameError as exc:                   # not ours to stop, or not running: nothing was signalled
            self.reply({"message": exc.message, "error": exc.to_dict(), "run_id": run["id"],
                        "status": run["status"], "stopped": False}, status=409)
            return
        self.reply(stopped.to_dict(), status=200 if stopped.stopped else 500)


class StepLogHandler(SameHandler):
    """The newest output of one step run: live while it runs, its final tail once it ended."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self, run_id: str, step: str) -> None:
        from same_nb.service import step_log

        limit = self.int_arg("limit", 20_000, MAX_LOG_CHARS)
        store, _, folder = await self.store_for(self.get_query_argument("path", ""))
        run = await self.run_in(store, run_id, folder)
        allowed = runs_folder(self.root_dir, folder)
        if allowed is None:
            raise PathError("this folder's runs are outside the Jupyter server root", path=None, status=403)

        def read(path, size: int, tail: bool) -> bytes | None:
            return read_confined(path, allowed, limit=size, tail=tail)

        found = await self.blocking(step_log, run, step, limit, read)
        if found is None:
            raise PathError(f"run {run['id']} has no step {step!r}", path=None, status=404)
        self.reply(found)


class CompareHandler(SameHandler):
    """What differs between two or more runs of this folder (``runs=1,2,3``)."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        from same_nb.service import compare_runs

        store, _, folder = await self.store_for(self.get_query_argument("path", ""))
        raw = self.get_query_argument("runs", "")
        if not _RUN_LIST.fullmatch(raw):
            raise SameError(f"runs must be run ids separated by commas, e.g. runs=3,4 (got {raw[:40]!r})")
        ids = list(dict.fromkeys(parse_run_id(r) for r in raw.split(",")))
        if not 2 <= len(ids) <= MAX_COMPARE:
            raise SameError(f"compare {len(ids)} run(s)? give from 2 to {MAX_COMPARE} different run ids")

        def compare() -> dict:
            store.mark_interrupted_runs()
            for run_id in ids:
                run = store.get_run(run_id)
                if run is None or not belongs(run, folder):
                    raise PathError(f"there is no run {run_id} in this folder", path=None, status=404)
            return compare_runs(store, ids)

        diff = await self.read_store(compare)
        diff["notebook"] = [to_api_path(self.root_dir, p) for p in diff.get("notebook", [])]
        self.reply(diff)
