"""REST: the runs of a folder (or one notebook) whose step inputs drifted from a baseline run
(``service.drifted_runs``, what ``same-nb runs --drift`` prints). Per-run drift between two runs comes
with the comparison (``/same-nb/api/compare``, its ``drift`` list)."""
from __future__ import annotations

import math

from jupyter_server.auth.decorator import authorized
from tornado import web

from same_nb.errors import SameError
from same_nb.server.handlers import MAX_PAGE, SameHandler, api_errors, belongs, parse_run_id
from same_nb.server.paths import PathError, to_api_path


class DriftHandler(SameHandler):
    """GET ``?path=&baseline=&threshold=&limit=&offset=``: ``{"runs": [{id, baseline, worst: {step, variable,
    column, psi}, schema: [...]}], "checked", "no_baseline", "threshold", "baseline"}``."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        from same_nb.service import drifted_runs

        limit = self.int_arg("limit", 20, MAX_PAGE)
        offset = self.int_arg("offset", 0, 10**9)
        raw = self.get_query_argument("threshold", "0.1")
        try:
            threshold = float(raw)
        except ValueError:
            threshold = math.nan
        if not 0 < threshold < math.inf:
            raise SameError(f"threshold must be a PSI above 0, e.g. 0.1 (got {raw[:40]!r})")
        raw_base = self.get_query_argument("baseline", "")
        baseline = parse_run_id(raw_base) if raw_base else None
        store, notebook, folder = await self.store_for(self.get_query_argument("path", ""))

        def find() -> dict:
            if baseline is not None:
                run = store.get_run(baseline)
                if run is None or not belongs(run, folder):
                    raise PathError(f"there is no run {baseline} in this folder", path=None, status=404)
            store.mark_interrupted_runs()
            result = drifted_runs(store, notebook_path=notebook, folder=folder, baseline=baseline, limit=limit,
                                  offset=offset, threshold=threshold)
            result["runs"] = [r for r in result["runs"] if belongs(r, folder)]
            return result

        result = await self.read_store(find)
        for run in result["runs"]:
            run["notebook"] = to_api_path(self.root_dir, run.pop("notebook_path"))
        self.reply(result)
