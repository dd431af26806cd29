"""REST handler for the sidebar's "Debug in notebook": the code to run in the notebook's kernel that
binds a recorded step's inputs and parameters there (``same_nb.load_step``). Thin over
:func:`same_nb.service.debug_step_code`; scope rules as in :mod:`same_nb.server.handlers`."""
from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from same_nb.server.handlers import SameHandler, api_errors
from same_nb.server.paths import PathError


class DebugStepHandler(SameHandler):
    """GET ``runs/N/steps/STEP/debug?path=NOTEBOOK``: ``{code, run_id, step, status, source_run_id,
    inputs, params}``; 404 when the run or step is not there, 400 when the step cannot be loaded
    (it never started, is still running, ...)."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self, run_id: str, step: str) -> None:
        from same_nb.service import debug_step_code

        store, _, folder = await self.store_for(self.get_query_argument("path", ""))
        run = await self.run_in(store, run_id, folder)
        if not any(s["step_name"] == step for s in run.get("steps", [])):
            raise PathError(f"run {run['id']} has no step {step!r}", path=None, status=404)
        self.reply(await self.read_store(debug_step_code, store, run, step))
