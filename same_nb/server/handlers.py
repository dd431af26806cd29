"""REST handlers under ``/same-nb/api/``: thin wrappers over the service layer and the run store.

Every handler needs an authenticated, authorized Jupyter user. Paths are relative to the server
root and go through :mod:`same_nb.server.paths`; hidden ones follow the contents manager's
``allow_hidden``. Analysing a notebook (inspect, checking a run request) and Kubeflow compiles run in
worker processes with a time and memory budget (:mod:`same_nb.server.worker`); database reads and
process start run on a thread, so the server keeps answering while they happen.

The run store is never trusted for files or scope: a request sees only the runs of notebooks in the
folder it names (a store may be shared by several folders or servers), and a file the store names is
read only when its real path is inside that folder's ``.same/runs/``. Answers carry paths relative to
the server root, never the server's own absolute paths.
"""
from __future__ import annotations

import functools
import json
import os
import re
import threading
from datetime import datetime
from itertools import accumulate
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

from same_nb.errors import SameError
from same_nb.server.paths import (
    PathError,
    inside,
    read_confined,
    relative_to_root,
    resolve_in_root,
    runs_folder,
    to_api_path,
)

MAX_BODY = 1024 * 1024
MAX_JSON_DEPTH = 32            # request bodies are flat: {"path", "params": {...}, ...}
MAX_PAGE = 500
MAX_JOBS = 256
MAX_EXECUTED_BYTES = 64 * 1024 * 1024
LOG_TAIL_BYTES = 16 * 1024
LOG_TAIL_LINES = 60
TARGETS = ("local", "kubeflow")
NOT_SHOWN = "[same-nb: not shown: the log file is not inside this folder's .same/runs/]"
_RUN_ID = re.compile(r"[0-9]{1,19}")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class StoreCache:
    """One open store per folder (or one for all, with ``$SAME_NB_DB``): opening a store (engine,
    schema check) per request is wasteful.

    Looking at runs never creates a store: a folder without ``.same/same.db`` (and no
    ``$SAME_NB_DB``) has no runs, and stays untouched until a run starts there.
    """

    def __init__(self) -> None:
        self._stores: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def get(self, folder: Path):
        """The folder's store, or None when no run was ever recorded there."""
        from same_nb.store.database import DB_ENV, open_store

        shared = os.environ.get(DB_ENV)
        with self._lock:
            store = self._stores.get(shared or folder)
            if store is None:
                if not shared and not (folder / ".same" / "same.db").is_file():
                    return None
                try:
                    store = open_store(notebook_dir=folder)
                except SameError as exc:        # a damaged or unreachable store: the server is fine
                    raise StoreDamaged(exc.message) from None
                self._stores[shared or folder] = store
            return store


class ApiError(SameError):
    """An answer other than 2xx with its status, and the error record a worker already made relative."""

    def __init__(self, message: str, status: int, error: dict | None = None):
        super().__init__(message)
        self.status = status
        self.error = error

    def to_dict(self) -> dict:
        return self.error or super().to_dict()


class StoreDamaged(SameError):
    """A stored record that does not decode: the store file is damaged (or was edited by hand)."""

    status = 409


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def json_depth(raw: bytes) -> int:
    """How deeply ``raw`` (JSON) nests arrays and objects, without parsing it (strings skipped)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def parse_body(raw: bytes, max_depth: int) -> dict:
    """A request body's JSON object; the depth is checked before parsing, so a hostile body cannot make the
    parser recurse."""
    depth = json_depth(raw)
    if depth > max_depth:
        raise SameError(f"the request body nests JSON {depth} levels deep; at most {max_depth} are accepted")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise SameError("the request body nests JSON too deeply") from None
    except ValueError as exc:
        raise SameError(f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SameError("the request body must be a JSON object")
    return data


def parse_run_id(raw: Any) -> int:
    """A run id from the URL or a query: ASCII digits, 1 to 2**63 - 1 (what a database column holds)."""
    from same_nb.store.database import MAX_RUN_ID, valid_run_id

    if not isinstance(raw, str) or not _RUN_ID.fullmatch(raw) or not valid_run_id(int(raw)):
        shown = (raw[:30] + ("…" if len(raw) > 30 else "")) if isinstance(raw, str) else raw
        raise SameError(f"a run id is a whole number from 1 to {MAX_RUN_ID} written with digits 0-9 (got {shown!r})")
    return int(raw)


def belongs(run: dict, folder: Path) -> bool:
    """Whether a run record is of a notebook directly in ``folder`` (resolved), as recorded: a store
    shared by several folders (or copied from elsewhere) holds runs of others."""
    recorded = run.get("notebook_path")
    if not isinstance(recorded, str) or not os.path.isabs(recorded) or ".." in Path(recorded).parts:
        return False
    return Path(recorded).parent == folder


def api_errors(method: Callable) -> Callable:
    """Answer SameError as JSON: 400 for bad input, or the error's own status; a run store that
    cannot be read is 409, with the database's reason."""
    from sqlalchemy.exc import DBAPIError

    @functools.wraps(method)
    async def wrapper(self: "SameHandler", *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except SameError as exc:
            error = exc.to_dict()
            if error.get("path"):
                error["path"] = to_api_path(self.root_dir, error["path"]) or error["path"]
            self.reply({"message": exc.message, "error": error}, status=getattr(exc, "status", 400))
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
            message = f"the run store cannot be read: {reason}"
            self.reply({"message": message, "error": {"message": message, "path": None}}, status=409)

    return wrapper


class SameHandler(APIHandler):
    auth_resource = "contents"

    @property
    def root_dir(self) -> str:
        root = getattr(self.contents_manager, "root_dir", None) or self.settings["server_root_dir"]
        return str(Path(root).expanduser())

    @property
    def allow_hidden(self) -> bool:
        return bool(getattr(self.contents_manager, "allow_hidden", False))

    @property
    def stores(self) -> StoreCache:
        return self.settings["same_nb_stores"]

    @property
    def workers(self):
        return self.settings["same_nb_workers"]

    async def blocking(self, fn: Callable, *args: Any) -> Any:
        return await IOLoop.current().run_in_executor(None, functools.partial(fn, *args))

    async def read_store(self, fn: Callable, *args: Any) -> Any:
        """``fn(*args)`` on a thread; a stored value that does not decode (a damaged store) is 409."""
        def call() -> Any:
            try:
                return fn(*args)
            except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
                raise StoreDamaged(f"the run store holds a record that cannot be read ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})") from None

        return await self.blocking(call)

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(relative_to_root(data, self.root_dir), default=_json_default))

    def body(self) -> dict:
        raw = self.request.body or b"{}"
        if len(raw) > MAX_BODY:
            raise web.HTTPError(413, f"request body over {MAX_BODY // 1024} KB")
        return parse_body(raw, MAX_JSON_DEPTH)

    def notebook(self, api_path: Any) -> Path:
        if not api_path:
            raise SameError("give the notebook's path ('path'), relative to the server root")
        return resolve_in_root(self.root_dir, api_path, kind="notebook", allow_hidden=self.allow_hidden)

    async def store_for(self, api_path: str, required: bool = True):
        """The store of a notebook's folder, or of a folder; the notebook (or None); and the folder.

        Without recorded runs the store is None, or a 404 when ``required``.
        """
        target = resolve_in_root(self.root_dir, api_path or "", kind="any", allow_hidden=self.allow_hidden)
        notebook = None if target.is_dir() else target
        folder = target if notebook is None else target.parent
        store = await self.read_store(self.stores.get, folder)
        if store is None and required:
            raise PathError("no runs are recorded in this folder yet", path=api_path, status=404)
        return store, notebook, folder

    async def run_in(self, store, raw_id: Any, folder: Path) -> dict:
        """Run ``raw_id`` of a notebook in ``folder``, or 404 (a run of another folder is not there)."""
        run_id = parse_run_id(raw_id)

        def detail() -> dict | None:
            store.mark_interrupted_runs()
            return store.get_run(run_id)

        run = await self.read_store(detail)
        if run is None or not belongs(run, folder):
            raise PathError(f"there is no run {run_id} in this folder", path=None, status=404)
        return run

    def int_arg(self, name: str, default: int, high: int) -> int:
        raw = self.get_query_argument(name, str(default))
        if not re.fullmatch(r"-?[0-9]{1,12}", raw):
            raise SameError(f"{name} must be an integer (got {raw[:30]!r})")
        value = int(raw)
        if not 0 <= value <= high:
            raise SameError(f"{name} must be between 0 and {high} (got {value})")
        return value

    def api_run(self, run: dict, folder: Path) -> dict:
        """A run record with server-relative paths, and log tails read only from inside the folder's
        ``.same/runs/`` (whatever the store says the log path is)."""
        root = self.root_dir
        allowed = runs_folder(root, folder)
        out = {k: v for k, v in run.items() if k not in ("notebook_path", "run_dir", "pid_started")}
        out["path"] = to_api_path(root, run["notebook_path"])
        if run.get("run_dir"):
            out["log_tail"] = _tail(run["run_dir"], allowed, "background.log")
        if "steps" in run:
            out["steps"] = [{**{k: v for k, v in s.items() if k not in ("log_path", "cache_info")},
                             "inputs": [_located(root, a) for a in s.get("inputs", [])],
                             "outputs": [_located(root, a) for a in s.get("outputs", [])],
                             "executed_notebook": to_api_path(root, s.get("executed_notebook")),
                             "log_tail": _tail(s["log_path"], allowed) if s.get("log_path") else ""}
                            for s in run["steps"]]
        return out


def _located(root: str, artifact: dict) -> dict:
    return {**artifact, "location": to_api_path(root, artifact.get("location"))}


def _tail(recorded: Any, allowed: Path | None, name: str | None = None) -> str:
    """The last lines of the log the store names (``recorded``, or ``recorded/name``), or a note when
    its real path is not inside ``allowed``."""
    try:
        path = Path(recorded, name) if name else Path(recorded)
        # Confinement first, existence second: a missing log outside is "not shown" too (no oracle).
        if allowed is None or not path.is_absolute() or not inside(allowed, os.path.realpath(path)):
            return NOT_SHOWN
        if not os.path.lexists(path):
            return ""
    except (OSError, ValueError, TypeError):
        return NOT_SHOWN
    data = read_confined(path, allowed, limit=LOG_TAIL_BYTES, tail=True)
    if data is None:
        return NOT_SHOWN
    return "\n".join(data.decode(errors="replace").splitlines()[-LOG_TAIL_LINES:])


def _raise_for(header: dict) -> None:
    """A worker's answer that is not 2xx, as the error the client gets."""
    status = int(header.get("status", 500))
    if status >= 300:
        raise ApiError(header.get("message") or "the worker gave no reason", status, header.get("error"))


class InspectHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        notebook = self.notebook(self.get_query_argument("path", ""))
        api_path = to_api_path(self.root_dir, notebook)
        header, body = await self.workers.call("inspect", f"inspecting {api_path}", notebook=str(notebook),
                                               root=self.root_dir, api_path=api_path)
        _raise_for(header)
        self.set_header("Content-Type", "application/json")
        self.finish(body)


class RunsHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        limit = self.int_arg("limit", 20, MAX_PAGE)
        offset = self.int_arg("offset", 0, 10**9)
        store, notebook, folder = await self.store_for(self.get_query_argument("path", ""), required=False)
        if store is None:
            self.reply({"total": 0, "limit": limit, "offset": offset, "runs": [], "latest_id": None})
            return

        def page() -> dict:
            from same_nb.service import refresh_remote_runs

            store.mark_interrupted_runs()
            runs = [r for r in store.list_runs(limit=limit, offset=offset, notebook_path=notebook, folder=folder)
                    if belongs(r, folder)]
            notes = refresh_remote_runs(store, runs)       # only unfinished Kubeflow runs ask their server
            newest = runs if offset == 0 and limit > 0 else [
                r for r in store.list_runs(limit=1, offset=0, notebook_path=notebook, folder=folder)
                if belongs(r, folder)]
            return {"total": store.count_runs(notebook_path=notebook, folder=folder), "limit": limit,
                    "offset": offset, "runs": runs, "notes": notes,
                    "latest_id": newest[0]["id"] if newest else None}       # a change means "refresh"

        data = await self.read_store(page)
        data["runs"] = [self.api_run(r, folder) for r in data["runs"]]
        self.reply(data)

    @web.authenticated
    @authorized(action="execute", resource="kernels")
    @api_errors
    async def post(self) -> None:
        from same_nb.background import start_run
        from same_nb.service import check_param_text

        body = self.body()
        notebook = self.notebook(body.get("path"))
        api_path = to_api_path(self.root_dir, notebook)
        target = body.get("target", "local")
        if target not in TARGETS:
            raise SameError(f"unknown target {str(target)[:40]!r}: expected one of {', '.join(TARGETS)}")
        params = body.get("params") or {}
        check_param_text(params)
        if target == "kubeflow":
            await self.start_on_kubeflow(notebook, body.get("host"), params)
            return
        jobs = body.get("jobs")
        if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= MAX_JOBS):
            raise SameError(f"jobs must be an integer from 1 to {MAX_JOBS} (got {str(jobs)[:40]})")
        # Checked in a worker (the notebook is analysed there, under budget) before any run row exists.
        header, _ = await self.workers.call("check_run", f"checking the run of {api_path}", notebook=str(notebook),
                                            params=params, root=self.root_dir)
        _raise_for(header)
        started = await self.blocking(functools.partial(
            start_run, notebook, [tuple(p) for p in header["params"]], use_cache=bool(body.get("use_cache", True)),
            jobs=jobs))
        self.reply({"run_id": started.run_id, "status": "running", "path": api_path}, status=202)

    async def start_on_kubeflow(self, notebook: Path, host: Any, params: dict[str, str]) -> None:
        """Compile, upload and start a KFP run in a process of its own: compiling imports the generated
        pipeline.py, which never happens in the Jupyter server (seconds: it waits for the KFP server)."""
        if not isinstance(host, str) or not host.startswith(("http://", "https://")) or len(host) > 2000:
            raise SameError("the kubeflow target needs the Kubeflow Pipelines host as an http(s) URL "
                            "(Settings › same-nb pipelines › Kubeflow Pipelines host)")
        api_path = to_api_path(self.root_dir, notebook)
        header, _ = await self.workers.one_shot("kubeflow_run", f"compiling and submitting {api_path} for Kubeflow",
                                                notebook=str(notebook), host=host, params=params, root=self.root_dir)
        _raise_for(header)
        self.reply({"run_id": header["run_id"], "status": header["state"], "remote_url": header["remote_url"],
                    "path": api_path}, status=202)


class RunHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self, run_id: str) -> None:
        store, _, folder = await self.store_for(self.get_query_argument("path", ""))
        run = await self.run_in(store, run_id, folder)
        self.reply(self.api_run(run, folder))


def _drives(run: dict) -> bool:
    """Whether the run's recorded process (if alive) names the run's own notebook on its command line:
    a copied or shared store may point at another folder's run process with the same run id."""
    pid = run.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True                          # stop_run refuses it with its own reason
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\x00")
    except (OSError, ValueError):
        return True                          # gone, or no /proc: stop_run decides
    return run.get("notebook_path") in args


class StepNotebookHandler(SameHandler):
    """Where a step's executed notebook is, as a server-relative path for the document manager."""

    @web.authenticated
    @authorized
    @api_errors
    async def get(self, run_id: str, step: str) -> None:
        store, _, folder = await self.store_for(self.get_query_argument("path", ""))
        run = await self.run_in(store, run_id, folder)
        found = next((s for s in run.get("steps", []) if s["step_name"] == step), None)
        if found is None or not found.get("executed_notebook"):
            raise PathError(f"run {run['id']} has no executed notebook for step {step!r} (cached or not run)",
                            path=None, status=404)
        allowed = runs_folder(self.root_dir, folder)
        api_path = to_api_path(self.root_dir, found["executed_notebook"])      # None: unusable or outside the root
        real = os.path.realpath(found["executed_notebook"]) if api_path is not None else ""
        if (allowed is None or api_path is None or not real.startswith(str(allowed) + os.sep)
                or not os.path.isfile(real)):
            raise PathError(f"the executed notebook of step {step!r} is gone or outside this folder's .same/runs/",
                            path=None, status=404)
        self.reply({"path": api_path, "run_id": run["id"], "step": step})


class ExecutedNotebookHandler(SameHandler):
    """A read-only contents model of an executed step notebook.

    They live under the hidden ``.same/runs/`` folder, which the contents API refuses to serve; the
    extension's read-only drive reads them here instead, and nothing else: the file must really be
    inside ``<folder>/.same/runs/`` of a folder the contents API would show.
    """

    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        api_path = self.get_query_argument("path", "")
        target = resolve_in_root(self.root_dir, api_path, kind="notebook")
        parts = PurePosixPath(api_path.replace("\\", "/")).parts
        at = parts.index(".same") if ".same" in parts else -1
        if at < 0 or parts[at + 1:at + 2] != ("runs",):
            raise PathError("only executed step notebooks (under .same/runs/) are served here",
                            path=api_path, status=403)
        folder = resolve_in_root(self.root_dir, "/".join(parts[:at]), kind="dir", allow_hidden=self.allow_hidden)
        allowed = runs_folder(self.root_dir, folder)

        def read() -> dict:
            raw = read_confined(target, allowed, limit=MAX_EXECUTED_BYTES) if allowed else None
            if raw is None:
                raise PathError("only executed step notebooks inside their folder's .same/runs/ are served here "
                                f"(at most {MAX_EXECUTED_BYTES // (1024 * 1024)} MB)", path=api_path, status=403)
            try:
                content = json.loads(raw)
            except RecursionError:
                raise SameError("cannot read the executed notebook: its JSON nests too deeply", path=api_path) from None
            except ValueError as exc:
                raise SameError(f"cannot read the executed notebook: {str(exc)[:200]}", path=api_path) from None
            stat = target.stat()
            stamp = datetime.fromtimestamp(stat.st_mtime).astimezone().isoformat()
            return {"name": target.name, "path": api_path, "type": "notebook", "format": "json",
                    "mimetype": None, "content": content, "writable": False, "created": stamp,
                    "last_modified": stamp, "size": len(raw), "hash": None, "hash_algorithm": None}

        self.reply(await self.blocking(read))


class LineageHandler(SameHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        from same_nb.server.lineage import artifact_lineage, run_lineage

        store, _, folder = await self.store_for(self.get_query_argument("path", ""))
        run, sha = self.get_query_argument("run", ""), self.get_query_argument("artifact", "")
        if bool(run) == bool(sha):
            raise SameError("give exactly one of run=<run id> or artifact=<sha256>")
        root = os.path.realpath(self.root_dir)
        if sha:
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise SameError(f"artifact must be a sha256 hex digest (got {sha[:70]!r})")
            graph = await self.read_store(artifact_lineage, store, sha, root)
        else:
            found = await self.run_in(store, run, folder)
            graph = await self.read_store(run_lineage, store, found["id"], root)
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
        store, notebook, folder = await self.store_for(self.get_query_argument("path", ""), required=False)
        if store is None:
            self.reply({"runs": [], "metrics": []})
            return

        def collect() -> dict:
            ids = [r["id"] for r in store.list_runs(limit=limit, offset=0, notebook_path=notebook, folder=folder)
                   if belongs(r, folder)]
            return {"runs": ids, "metrics": store.run_metrics(ids) if ids else []}

        self.reply(await self.read_store(collect))
