"""REST handlers under ``/same-nb/api/``: thin wrappers over the service layer and the run store.

Every handler needs an authenticated, authorized Jupyter user. Paths are relative to the server
root and go through :mod:`same_nb.server.paths`. Blocking work (analysis, database reads, process
start) runs on a thread so the server keeps answering while it happens.
"""
from __future__ import annotations

import functools
import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

from same_nb.errors import SameError
from same_nb.server.paths import PathError, resolve_in_root, to_api_path

MAX_BODY = 1024 * 1024
MAX_PAGE = 500
LOG_TAIL_BYTES = 16 * 1024
LOG_TAIL_LINES = 60
TARGETS = ("local", "kubeflow")


class StoreCache:
    """One open store per folder: opening a store (engine, schema check) per request is wasteful.

    Looking at runs never creates a store: a folder without ``.same/same.db`` (and no
    ``$SAME_NB_DB``) has no runs, and stays untouched until a run starts there.
    """

    def __init__(self) -> None:
        self._stores: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def get(self, folder: Path):
        """The folder's store, or None when no run was ever recorded there."""
        from same_nb.store.database import DB_ENV, open_store

        with self._lock:
            store = self._stores.get(folder)
            if store is None:
                if not os.environ.get(DB_ENV) and not (folder / ".same" / "same.db").is_file():
                    return None
                store = self._stores[folder] = open_store(notebook_dir=folder)
            return store


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def api_errors(method: Callable) -> Callable:
    """Answer SameError as JSON: 400 for bad input, or the PathError's own status."""

    @functools.wraps(method)
    async def wrapper(self: "SameHandler", *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except SameError as exc:
            error = exc.to_dict()
            if error.get("path"):
                error["path"] = to_api_path(self.root_dir, error["path"]) or error["path"]
            self.set_status(getattr(exc, "status", 400))
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": exc.message, "error": error}))

    return wrapper


class SameHandler(APIHandler):
    auth_resource = "contents"

    @property
    def root_dir(self) -> str:
        root = getattr(self.contents_manager, "root_dir", None) or self.settings["server_root_dir"]
        return str(Path(root).expanduser())

    @property
    def stores(self) -> StoreCache:
        return self.settings["same_nb_stores"]

    async def blocking(self, fn: Callable, *args: Any) -> Any:
        return await IOLoop.current().run_in_executor(None, functools.partial(fn, *args))

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=_json_default))

    def body(self) -> dict:
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413, f"request body over {MAX_BODY // 1024} KB")
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise SameError(f"the request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SameError("the request body must be a JSON object")
        return data

    def notebook(self, api_path: Any) -> Path:
        if not api_path:
            raise SameError("give the notebook's path ('path'), relative to the server root")
        return resolve_in_root(self.root_dir, api_path, kind="notebook")

    def store_for(self, api_path: str, required: bool = True):
        """The store of a notebook's folder, or of a folder; and the notebook (or None).

        Without recorded runs the store is None, or a 404 when ``required``.
        """
        target = resolve_in_root(self.root_dir, api_path or "", kind="any")
        notebook = None if target.is_dir() else target
        store = self.stores.get(target if notebook is None else target.parent)
        if store is None and required:
            raise PathError("no runs are recorded in this folder yet", path=api_path, status=404)
        return store, notebook

    def int_arg(self, name: str, default: int, high: int) -> int:
        raw = self.get_query_argument(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise SameError(f"{name} must be an integer (got {raw!r})") from None
        if not 0 <= value <= high:
            raise SameError(f"{name} must be between 0 and {high} (got {value})")
        return value

    def api_run(self, run: dict) -> dict:
        """A run record with server-relative paths and log tails instead of absolute paths."""
        root = self.root_dir
        out = {k: v for k, v in run.items() if k not in ("notebook_path", "run_dir", "pid_started")}
        out["path"] = to_api_path(root, run["notebook_path"])
        if run.get("run_dir"):
            out["log_tail"] = _tail(Path(run["run_dir"]) / "background.log")
        if "steps" in run:
            out["steps"] = [{**{k: v for k, v in s.items() if k not in ("log_path", "cache_info")},
                             "executed_notebook": to_api_path(root, s.get("executed_notebook")),
                             "log_tail": _tail(Path(s["log_path"])) if s.get("log_path") else ""}
                            for s in run["steps"]]
        return out


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


class InspectHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        from same_nb.service import inspect_notebook

        notebook = self.notebook(self.get_query_argument("path", ""))
        inspection = await self.blocking(inspect_notebook, notebook)
        data = inspection.to_dict()
        data["path"] = data["pipeline"]["notebook"] = to_api_path(self.root_dir, notebook)
        self.reply(data)


class RunsHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        limit = self.int_arg("limit", 20, MAX_PAGE)
        offset = self.int_arg("offset", 0, 10**9)
        store, notebook = self.store_for(self.get_query_argument("path", ""), required=False)
        if store is None:
            self.reply({"total": 0, "limit": limit, "offset": offset, "runs": []})
            return

        def page() -> dict:
            from same_nb.service import refresh_remote_runs

            store.mark_interrupted_runs()
            runs = store.list_runs(limit=limit, offset=offset, notebook_path=notebook)
            notes = refresh_remote_runs(store, runs)       # only unfinished Kubeflow runs ask their server
            return {"total": store.count_runs(notebook_path=notebook), "limit": limit, "offset": offset,
                    "runs": runs, "notes": notes}

        data = await self.blocking(page)
        data["runs"] = [self.api_run(r) for r in data["runs"]]
        self.reply(data)

    @web.authenticated
    @authorized(action="execute", resource="kernels")
    @api_errors
    async def post(self) -> None:
        from same_nb.background import start_run

        body = self.body()
        notebook = self.notebook(body.get("path"))
        target = body.get("target", "local")
        if target not in TARGETS:
            raise SameError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
        params = body.get("params") or {}
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise SameError("params must map parameter names to values written as text, e.g. {\"alpha\": \"0.5\"}")
        if target == "kubeflow":
            await self.start_on_kubeflow(notebook, body.get("host"), params)
            return
        jobs = body.get("jobs")
        if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool)):
            raise SameError(f"jobs must be an integer (got {jobs!r})")
        started = await self.blocking(functools.partial(
            start_run, notebook, list(params.items()), use_cache=bool(body.get("use_cache", True)), jobs=jobs))
        self.reply({"run_id": started.run_id, "status": "running",
                    "path": to_api_path(self.root_dir, notebook)}, status=202)

    async def start_on_kubeflow(self, notebook: Path, host: Any, params: dict[str, str]) -> None:
        """Compile, upload and start a KFP run (seconds: it waits for the KFP server's answers)."""
        from same_nb.service import run_on_kubeflow

        if not isinstance(host, str) or not host.startswith(("http://", "https://")):
            raise SameError("the kubeflow target needs the Kubeflow Pipelines host as an http(s) URL "
                            "(Settings › same-nb pipelines › Kubeflow Pipelines host)")
        run_id, submitted = await self.blocking(functools.partial(
            run_on_kubeflow, notebook, host, params=list(params.items())))
        self.reply({"run_id": run_id, "status": submitted.state, "remote_url": submitted.url,
                    "path": to_api_path(self.root_dir, notebook)}, status=202)


class RunHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self, run_id: str) -> None:
        store, _ = self.store_for(self.get_query_argument("path", ""))

        def detail() -> dict | None:
            store.mark_interrupted_runs()
            return store.get_run(int(run_id))

        run = await self.blocking(detail)
        if run is None:
            raise PathError(f"there is no run {run_id} in this store", path=None, status=404)
        self.reply(self.api_run(run))


class CancelHandler(SameHandler):
    @web.authenticated
    @authorized(action="execute", resource="kernels")
    @api_errors
    async def post(self, run_id: str) -> None:
        from same_nb.background import cancel_run

        body = self.body()
        store, _ = self.store_for(body.get("path", ""))
        run = await self.blocking(store.get_run, int(run_id))
        if run is None:
            raise PathError(f"there is no run {run_id} in this store", path=None, status=404)
        try:
            cancel_run(run)
        except SameError as exc:
            self.reply({"message": exc.message, "error": exc.to_dict()}, status=409)
            return
        self.reply({"run_id": int(run_id), "signalled": True}, status=202)


class StepNotebookHandler(SameHandler):
    """Where a step's executed notebook is, as a server-relative path for the document manager."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self, run_id: str, step: str) -> None:
        store, _ = self.store_for(self.get_query_argument("path", ""))
        run = await self.blocking(store.get_run, int(run_id))
        found = next((s for s in (run or {}).get("steps", []) if s["step_name"] == step), None)
        if found is None or not found.get("executed_notebook"):
            raise PathError(f"run {run_id} has no executed notebook for step {step!r} (cached or not run)",
                            path=None, status=404)
        api_path = to_api_path(self.root_dir, found["executed_notebook"])
        if api_path is None or not Path(found["executed_notebook"]).is_file():
            raise PathError(f"the executed notebook of step {step!r} is gone or outside the server root",
                            path=None, status=404)
        self.reply({"path": api_path, "run_id": int(run_id), "step": step})


class ExecutedNotebookHandler(SameHandler):
    """A read-only contents model of an executed step notebook.

    They live under the hidden ``.same/`` folder, which the contents API refuses to serve; the
    extension's read-only drive reads them here instead.
    """

    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        api_path = self.get_query_argument("path", "")
        target = self.notebook(api_path)
        parts = Path(api_path).parts
        if ".same" not in parts or "runs" not in parts[parts.index(".same"):]:
            raise PathError("only executed step notebooks (under .same/runs/) are served here",
                            path=api_path, status=403)

        def read() -> dict:
            stat = target.stat()
            try:
                content = json.loads(target.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SameError(f"cannot read the executed notebook: {exc}", path=api_path) from None
            stamp = datetime.fromtimestamp(stat.st_mtime).astimezone().isoformat()
            return {"name": target.name, "path": api_path, "type": "notebook", "format": "json",
                    "mimetype": None, "content": content, "writable": False, "created": stamp,
                    "last_modified": stamp, "size": stat.st_size, "hash": None, "hash_algorithm": None}

        self.reply(await self.blocking(read))


class LineageHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        from same_nb.server.lineage import artifact_lineage, run_lineage

        store, _ = self.store_for(self.get_query_argument("path", ""))
        run, sha = self.get_query_argument("run", ""), self.get_query_argument("artifact", "")
        if bool(run) == bool(sha):
            raise SameError("give exactly one of run=<run id> or artifact=<sha256>")
        if sha:
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise SameError(f"artifact must be a sha256 hex digest (got {sha!r})")
            graph = await self.blocking(artifact_lineage, store, sha)
        else:
            if not run.isdigit():
                raise SameError(f"run must be a run id (got {run!r})")
            graph = await self.blocking(run_lineage, store, int(run))
        for node in graph["nodes"]:
            if node["kind"] == "artifact" and node["data"].get("location"):
                node["data"]["location"] = to_api_path(self.root_dir, node["data"]["location"])
        self.reply(graph)


class MetricsHandler(SameHandler):
    """Metrics of the newest runs of a notebook (or folder), for charts across runs."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        limit = self.int_arg("limit", 50, MAX_PAGE)
        store, notebook = self.store_for(self.get_query_argument("path", ""), required=False)
        if store is None:
            self.reply({"runs": [], "metrics": []})
            return

        def collect() -> dict:
            ids = [r["id"] for r in store.list_runs(limit=limit, offset=0, notebook_path=notebook)]
            return {"runs": ids, "metrics": store.run_metrics(ids) if ids else []}

        self.reply(await self.blocking(collect))


def handlers(base_url: str) -> list[tuple[str, type]]:
    api = base_url.rstrip("/") + "/same-nb/api"
    return [
        (f"{api}/inspect", InspectHandler),
        (f"{api}/runs", RunsHandler),
        (rf"{api}/runs/(\d+)", RunHandler),
        (rf"{api}/runs/(\d+)/cancel", CancelHandler),
        (rf"{api}/runs/(\d+)/steps/([A-Za-z_][A-Za-z0-9_-]{{0,62}})/notebook", StepNotebookHandler),
        (f"{api}/executed", ExecutedNotebookHandler),
        (f"{api}/lineage", LineageHandler),
        (f"{api}/metrics", MetricsHandler),
    ]
