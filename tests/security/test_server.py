"""The REST API under /same-nb/api/ against hostile stores, paths, bodies, parameters and notebooks.

Two real Jupyter servers (subprocesses on 127.0.0.1, one per module, stopped at its end):
- ``plain``: per-folder SQLite stores, hidden files refused (Jupyter's default), a 5 s inspection budget;
- ``shared``: one store for every folder (PostgreSQL when its binaries are installed, else one SQLite
  file) also written by another "server root", ``allow_hidden`` on, a 200 MB inspection memory budget.

Every case asserts that the request is *held*: a 4xx with a clear JSON message, no file outside the
server root read (its marker never appears) or created, no absolute server path in the answer, and
no hang (every request has a timeout).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from security import hostile

from conftest import NOTEBOOKS, notebook_data

pytestmark = pytest.mark.slow

TOKEN = uuid.uuid4().hex
SECRET = f"OUTSIDE-SECRET-{uuid.uuid4().hex}"     # the content of a file outside every server root
NOT_SHOWN = "[same-nb: not shown: the log file is not inside this folder's .same/runs/]"
INSPECT_TIMEOUT = 5
SHARED_MEMORY_MB = 200
PARAMS_NB = notebook_data([(["parameters"], "name = 'run'\nalpha = 0.5\nepochs = 3"),
                           (["step:label"], "label = f'{name}:{alpha}:{epochs}'\nprint(label)")])


# `jupyter server`, without the optional IRI checker jsonschema builds for ~2 s of CPU (8-12 s on a busy
# machine; see same_nb/lean.py) and without the other server extensions: only start-up gets faster.
BOOT = ("import sys; sys.modules.setdefault('rfc3987_syntax', None); "
        "from jupyter_server.serverapp import main; sys.exit(main())")
EXTENSIONS = repr({"same_nb.server": True, "jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False,
                   "jupyter_server_terminals": False})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `jupyter server` subprocess on 127.0.0.1 with the extension, and a small JSON client."""

    def __init__(self, root: Path, log: Path, env: dict[str, str], *options: str):
        self.root, self.port = root, _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("SAME_NB_")}
        full.update(env, JUPYTER_RUNTIME_DIR=str(log.parent / f"runtime-{self.port}"))
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
             f"--ServerApp.root_dir={root}", f"--ServerApp.jpserver_extensions={EXTENSIONS}",
             *options], env=full, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, Path(self.log.name).read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={TOKEN}", timeout=2).read()
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise AssertionError(f"the server did not answer within {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def raw(self, method: str, url: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, str]:
        request = urllib.request.Request(self.base + url, data=body, method=method,
                                         headers={"Authorization": f"token {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def call(self, method: str, *parts: str, params: dict | None = None, body=None, timeout: float = 30):
        """(status, JSON) of /same-nb/api/<parts>; the answer never shows the server root's own path."""
        url = "/same-nb/api/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        code, text = self.raw(method, url, body if method == "POST" else None, timeout)
        for form in {str(self.root), os.path.realpath(self.root)}:
            assert form not in text, f"the answer shows the server's absolute path: {text[:500]}"
        assert SECRET not in text, f"the answer shows a file outside the server root: {text[:500]}"
        try:
            return code, json.loads(text)
        except ValueError:
            return code, text


def held(reply: tuple[int, object], words: str = "", status: int | None = None) -> dict:
    """A 4xx with a JSON message (containing ``words``): the request was refused cleanly."""
    code, data = reply
    assert 400 <= code < 500 and (status is None or code == status), reply
    assert isinstance(data, dict) and data.get("message"), reply
    assert words in data["message"], reply
    return data


def wait_for(server: Server, run_id: int, path: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, run = server.call("GET", "runs", str(run_id), params={"path": path})
        assert code == 200, run
        if run["status"] not in ("pending", "running"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*")) if not p.is_symlink()}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    root, shared_root, other, outside = (base / n for n in ("root", "shared-root", "other-root", "outside"))
    for folder in (root / "work", root / "big", root / ".private", shared_root / "work", shared_root / "sib",
                   shared_root / ".private", other, outside):
        folder.mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET)
    (outside / "secret.ipynb").write_text(json.dumps(notebook_data([(["step:leak"], f"x = '{SECRET}'")])))
    for folder in (root / "work", shared_root / "work", shared_root / "sib", other):
        (folder / "p.ipynb").write_text(json.dumps(PARAMS_NB))
    for folder in (root / ".private", shared_root / ".private"):
        shutil.copy(NOTEBOOKS / "branching.ipynb", folder / "creds.ipynb")
    (root / "work" / "visible.ipynb").symlink_to(root / ".private" / "creds.ipynb")
    (root / "notes.txt").write_text("inside the root, outside any .same/runs/")
    # 30,000 chained steps: ~25 s of analysis in ~400 MB, over the plain server's time budget whatever
    # the machine; 80,000 parameters: ~300 MB within seconds, over the shared server's memory budget.
    chain = [(["parameters"], "a = 1")] + [([f"step:s{i}"], f"x{i} = {f'x{i - 1}' if i else 'a'} + 1")
                                           for i in range(30_000)]
    (root / "big" / "big.ipynb").write_text(json.dumps(notebook_data(chain)))
    params = notebook_data([(["parameters"], "\n".join(f"p{i} = {i}" for i in range(80_000))), (["step:a"], "x = p1")])
    (shared_root / "work" / "big.ipynb").write_text(json.dumps(params))
    # A YAML alias bomb beside a notebook whose list parameter it sets.
    (root / "bomb").mkdir()
    (root / "bomb" / "bomb.ipynb").write_text(json.dumps(notebook_data([(["parameters"], "n = [1]"),
                                                                        (["step:a"], "x = n")])))
    yaml = "run:\n  parameters:\n    n:\n      - &a0 [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"      - &a{i} [{','.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    (root / "bomb" / "same.yaml").write_text(yaml)

    from postgres_server import _bin_dir

    outside_before = _tree(outside)
    plain = Server(root, base / "plain.log", {"SAME_NB_INSPECT_TIMEOUT": str(INSPECT_TIMEOUT)})
    shared, drop = None, None
    try:
        if _bin_dir() is not None:               # the shared store is PostgreSQL where it is installed
            from postgres_server import fresh_database

            url, drop = fresh_database()
        else:
            url = f"sqlite:///{base / 'shared.db'}"
        shared = Server(shared_root, base / "shared.log",
                        {"SAME_NB_DB": url, "SAME_NB_INSPECT_MEMORY_MB": str(SHARED_MEMORY_MB)},
                        "--ContentsManager.allow_hidden=True")
        plain.wait_ready()
        # The module's one real run starts now and executes while the tests that do not need it run.
        code, reply = plain.call("POST", "runs", body={"path": "work/p.ipynb",
                                                       "params": {"name": "--no -x", "alpha": "-1e-3", "epochs": "-1"}})
        assert code == 202, reply
        shared.wait_ready()
        yield {"base": base, "root": root, "shared_root": shared_root, "other": other, "outside": outside,
               "plain": plain, "shared": shared, "url": url, "negative_run_id": reply["run_id"]}
    finally:
        for server in (plain, shared):
            if server is not None:
                server.proc.terminate()
        for server in (plain, shared):
            if server is not None:
                server.stop()
        if drop is not None:
            drop()
    assert _tree(outside) == outside_before, "a file outside the server roots was created or changed"
    assert not list(base.rglob(hostile.MARKER)), "a hostile value was executed"


@pytest.fixture(scope="module")
def negative_run(env) -> dict:
    """One real background run whose values all start with '-': a text argparse would take for
    options, and typed values (the API hands them to the run process in a file, not on argv)."""
    return wait_for(env["plain"], env["negative_run_id"], "work/p.ipynb")


def _clone(env, name: str, *, rewrite: bool = True) -> Path:
    """work/ (notebook and .same/) copied to <root>/<name>; with ``rewrite`` its store names the
    copy's own files, as if the runs had happened there."""
    src, dst = env["root"] / "work", env["root"] / name
    shutil.copytree(src, dst, symlinks=True)
    if rewrite:
        with sqlite3.connect(dst / ".same" / "same.db") as db:
            old, new = f"{src}/", f"{dst}/"
            db.execute("UPDATE runs SET notebook_path = replace(notebook_path, ?, ?), run_dir = replace(run_dir, ?, ?)",
                       (old, new, old, new))
            db.execute("UPDATE step_runs SET log_path = replace(log_path, ?, ?), "
                       "executed_notebook = replace(executed_notebook, ?, ?)", (old, new, old, new))
    return dst


def _sql(folder: Path, statement: str, *args) -> None:
    with sqlite3.connect(folder / ".same" / "same.db") as db:
        db.execute(statement, args)


# Tests that need no finished run come first: the module's one real run (see ``negative_run``)
# executes in the background meanwhile.

# -- 2. hidden files follow ContentsManager.allow_hidden -------------------------------------------

HIDDEN = "hidden files and folders are not served"


def test_hidden_notebooks_are_404_like_the_contents_api(env):
    server = env["plain"]
    code, _ = server.call("GET", "inspect", params={"path": "work/p.ipynb"})
    assert code == 200
    for path in (".private/creds.ipynb", ".private/missing.ipynb", "work/visible.ipynb", "./.private/creds.ipynb"):
        held(server.call("GET", "inspect", params={"path": path}), HIDDEN, status=404)
        held(server.call("POST", "runs", body={"path": path}), HIDDEN, status=404)
        held(server.call("GET", "metrics", params={"path": path}), HIDDEN, status=404)
        held(server.call("GET", "runs", params={"path": path}), HIDDEN, status=404)
    held(server.call("GET", "runs", params={"path": ".private"}), HIDDEN, status=404)
    held(server.call("GET", "lineage", params={"path": ".private/creds.ipynb", "run": "1"}), HIDDEN, status=404)
    held(server.call("GET", "executed", params={"path": ".private/.same/runs/1/steps/load.ipynb"}), status=404)
    code, reply = server.raw("GET", f"/api/contents/.private/creds.ipynb?token={TOKEN}")
    assert code == 404                                   # what Jupyter's own contents API answers


def test_allow_hidden_lets_the_api_read_hidden_notebooks(env):
    code, data = env["shared"].call("GET", "inspect", params={"path": ".private/creds.ipynb"})
    assert code == 200 and [s["name"] for s in data["pipeline"]["steps"]] == ["load", "left", "right", "join"]


# -- 3. a shared store shows a server only the runs under its root --------------------------------

def test_a_shared_store_shows_only_the_runs_of_the_folder_asked_about(env, monkeypatch):
    from same_nb.store.database import open_store

    monkeypatch.setenv("SAME_NB_DB", env["url"])
    server, shared_root = env["shared"], env["shared_root"]
    made, read = "cd" * 32, "ef" * 32

    def record(notebook: Path, params: dict, inputs=(), outputs=()) -> int:
        run_id = store.create_run(notebook_path=notebook, notebook_sha256="0" * 64, pipeline_name="p", params=params,
                                  target="local", run_dir_root=notebook.parent / ".same" / "runs")
        step = store.add_step_runs(run_id, ["label"])["label"]
        store.start_step(step, cache_key=None, cache_info=None, reason=None, code_sha256=None)
        store.finish_step(step, status="success", executed_notebook=None, log_path=None, inputs=list(inputs),
                          outputs=list(outputs), metrics=[{"name": "score", "value": 1.0}])
        store.finish_run(run_id, "success")
        return run_id

    with open_store() as store:
        foreign = record(env["other"] / "p.ipynb", {"token": SECRET},
                         outputs=[{"name": "x", "sha256": made, "kind": "value",
                                   "location": str(env["other"] / ".same" / "x")}])
        mine = record(shared_root / "work" / "p.ipynb", {"name": "mine"},
                      inputs=[{"name": "x", "sha256": made, "kind": "value", "location": None}],
                      outputs=[{"name": "y", "sha256": read, "kind": "value",
                                "location": str(shared_root / "work" / ".same" / "y")}])
        sibling = record(shared_root / "sib" / "p.ipynb", {"name": "sibling"})
        nested = record(shared_root / "work" / "sub" / "p.ipynb", {"name": "nested"})     # a folder of its own
        alike = record(shared_root / "WORK" / "p.ipynb", {"name": "alike"})               # LIKE would match it

    for path in ("work/p.ipynb", "work"):
        code, page = server.call("GET", "runs", params={"path": path})
        assert code == 200 and page["total"] == 1 and [r["id"] for r in page["runs"]] == [mine], page
        assert page["runs"][0]["path"] == "work/p.ipynb"
        code, metrics = server.call("GET", "metrics", params={"path": path})
        assert code == 200 and metrics["runs"] == [mine]
    assert server.call("GET", "runs", params={"path": ""})[1]["total"] == 0
    code, run = server.call("GET", "runs", str(mine), params={"path": "work/p.ipynb"})
    assert code == 200 and run["steps"][0]["outputs"][0]["location"] == "work/.same/y"
    for other in (foreign, sibling, nested, alike):
        held(server.call("GET", "runs", str(other), params={"path": "work/p.ipynb"}), "no run", status=404)
        held(server.call("POST", "runs", str(other), "cancel", body={"path": "work"}), "no run", status=404)
        held(server.call("GET", "lineage", params={"path": "work", "run": str(other)}), "no run", status=404)
    code, graph = server.call("GET", "lineage", params={"path": "work", "run": str(mine)})
    assert code == 200 and {n["data"].get("run_id") for n in graph["nodes"] if n["kind"] == "step_run"} == {mine}
    code, graph = server.call("GET", "lineage", params={"path": "work", "artifact": made})
    assert code == 200 and [n["kind"] for n in graph["nodes"]] == ["artifact"], graph   # its producer is elsewhere


# -- 6. Kubeflow compiles never run generated code in the server ----------------------------------

def test_kubeflow_compile_runs_outside_the_server_process(env):
    pytest.importorskip("kfp")
    server = env["plain"]
    closed = _free_port()
    held(server.call("POST", "runs", body={"path": "work/p.ipynb", "target": "kubeflow",
                                           "host": f"http://127.0.0.1:{closed}"}, timeout=300),
         "cannot reach Kubeflow Pipelines", status=400)
    assert (env["root"] / "work" / "p-pipeline" / "pipeline.py").is_file()     # it was compiled (elsewhere)
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "protobuf" not in maps and "_upb" not in maps, "kfp (protobuf) was loaded into the Jupyter server"


# -- 7. inspections run off the server's event loop, under a time and memory budget -------------

def test_a_slow_inspection_is_stopped_and_does_not_block_other_requests(env):
    server, results = env["plain"], {}
    warm = [threading.Thread(target=server.call, args=("GET", "inspect"), kwargs={"params": {"path": "work/p.ipynb"}})
            for _ in range(2)]                   # both pooled workers started, so timings are of requests only
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join(60)

    def slow() -> None:
        started = time.perf_counter()
        results["big"] = server.call("GET", "inspect", params={"path": "big/big.ipynb"}, timeout=60)
        results["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(1.0)
    timings = {}
    for name, call in (("status", lambda: server.raw("GET", f"/api/status?token={TOKEN}")),
                       ("runs", lambda: server.call("GET", "runs", params={"path": "work"})),
                       ("inspect", lambda: server.call("GET", "inspect", params={"path": "work/p.ipynb"}))):
        started = time.perf_counter()
        assert call()[0] == 200
        timings[name] = time.perf_counter() - started
    thread.join(60)
    print(f"\nwhile a slow inspection ran: {', '.join(f'{k} {v * 1000:.0f} ms' for k, v in timings.items())}; "
          f"the slow one answered after {results['seconds']:.1f} s")
    assert timings["status"] < 0.5 and timings["runs"] < 1.0 and timings["inspect"] < 2.0, timings
    held(results["big"], f"took longer than {INSPECT_TIMEOUT} s", status=422)
    assert results["seconds"] < INSPECT_TIMEOUT + 10
    assert server.call("GET", "inspect", params={"path": "work/p.ipynb"})[0] == 200       # a new worker took over
    started = time.perf_counter()
    held(server.call("GET", "inspect", params={"path": "bomb/bomb.ipynb"}))                # refused, whichever way
    assert time.perf_counter() - started < INSPECT_TIMEOUT + 10


def test_an_inspection_over_its_memory_budget_is_refused(env):
    server = env["shared"]
    held(server.call("GET", "inspect", params={"path": "work/big.ipynb"}, timeout=120), f"{SHARED_MEMORY_MB} MB",
         status=422)
    assert server.call("GET", "inspect", params={"path": "work/p.ipynb"})[0] == 200


def test_lineage_never_hashes_files_outside_the_root(env):
    """A file input recorded outside the root is shown unchecked, without its location."""
    from same_nb.store.database import open_store

    server, folder = env["plain"], env["root"] / "c_lineage"
    folder.mkdir()
    (folder / "p.ipynb").write_text(json.dumps(PARAMS_NB))
    secret = env["outside"] / "secret.txt"
    file_sha, out_sha = hashlib.sha256(secret.read_bytes()).hexdigest(), "ab" * 32
    with open_store(notebook_dir=folder) as store:
        run_id = store.create_run(notebook_path=folder / "p.ipynb", notebook_sha256="0" * 64, pipeline_name="p",
                                  params={}, target="local", run_dir_root=folder / ".same" / "runs")
        step = store.add_step_runs(run_id, ["label"])["label"]
        store.start_step(step, cache_key=None, cache_info=None, reason=None, code_sha256=None)
        store.finish_step(step, status="success", executed_notebook=None, log_path=None,
                          inputs=[{"name": str(secret), "sha256": file_sha, "role": "file", "kind": "file",
                                   "size": len(SECRET), "location": str(secret)}],
                          outputs=[{"name": "label", "sha256": out_sha, "kind": "value", "location": None}])
        store.finish_run(run_id, "success")
    code, graph = server.call("GET", "lineage", params={"path": "c_lineage/p.ipynb", "artifact": out_sha})
    assert code == 200, graph
    node = next(n for n in graph["nodes"] if n["id"] == f"artifact:{file_sha}")
    assert node["data"]["location"] is None and "outside the Jupyter server root" in node["data"]["modified"]


# -- 5. parameters --------------------------------------------------------------------------------

def test_values_starting_with_a_dash_reach_the_run_unchanged(negative_run):
    run = negative_run
    assert run["status"] == "success", run["log_tail"]
    assert run["params"] == {"name": "--no -x", "alpha": -0.001, "epochs": -1}
    assert "error: argument" not in run["log_tail"] and run["steps"][0]["status"] == "success"


BAD_VALUES = [("a\x00b", "NUL"), ("\ud800", "lone surrogate"), ("x" * 200_000, "at most")]


def _run_count(server: Server, path: str) -> int:
    code, page = server.call("GET", "runs", params={"path": path})
    assert code == 200, page
    return page["total"]


@pytest.mark.parametrize("value,words", BAD_VALUES, ids=hostile.ids([v for v, _ in BAD_VALUES]))
def test_unusable_parameter_values_are_refused_before_a_run_exists(env, negative_run, value, words):
    server = env["plain"]
    before = _run_count(server, "work/p.ipynb")
    body = json.dumps({"path": "work/p.ipynb", "params": {"name": value}}).encode()
    held(server.call("POST", "runs", body=body), words, status=400)
    body = json.dumps({"path": "work/p.ipynb", "params": {value[:100]: "1"}}).encode()
    held(server.call("POST", "runs", body=body), status=400)
    assert _run_count(server, "work/p.ipynb") == before


def test_hostile_values_are_checked_without_starting_anything(env, negative_run):
    """Every hostile string as a text value, beside an int value that does not parse: 400 each time,
    from the text check or the type check, with no run row and nothing executed."""
    server = env["plain"]
    before = _run_count(server, "work/p.ipynb")
    for value in hostile.strings():
        body = json.dumps({"path": "work/p.ipynb", "params": {"name": value, "epochs": "not a number"}}).encode()
        held(server.call("POST", "runs", body=body), status=400)
        held(server.call("POST", "runs", body=json.dumps({"path": "work/p.ipynb", "params": {value: "1"}}).encode()),
             status=400)
    assert _run_count(server, "work/p.ipynb") == before
    held(server.call("POST", "runs", body={"path": "work/p.ipynb", "jobs": 10**30}), "jobs", status=400)
    held(server.call("POST", "runs", body={"path": "work/p.ipynb", "params": {"name": 5}}), "as text", status=400)


# -- 1. files named by the store are read only inside the folder's .same/runs/ --------------------

def test_a_symlinked_log_is_not_followed_out_of_the_root(env, negative_run):
    server, run_id = env["plain"], negative_run["id"]
    copy = _clone(env, "c_link")
    step_dir = copy / ".same" / "runs" / str(run_id)
    for log in [step_dir / "background.log", *step_dir.glob("steps/*/log.txt")]:
        log.unlink()
        log.symlink_to(env["outside"] / "secret.txt")
    code, run = server.call("GET", "runs", str(run_id), params={"path": "c_link/p.ipynb"})
    assert code == 200 and run["log_tail"] == NOT_SHOWN
    assert all(s["log_tail"] in ("", NOT_SHOWN) for s in run["steps"])
    # A link from inside .same/runs/ to a file elsewhere INSIDE the root is not followed either.
    (step_dir / "background.log").unlink()
    (step_dir / "background.log").symlink_to(env["root"] / "notes.txt")
    code, run = server.call("GET", "runs", str(run_id), params={"path": "c_link/p.ipynb"})
    assert code == 200 and run["log_tail"] == NOT_SHOWN


def test_log_paths_in_a_copied_store_are_not_trusted(env, negative_run):
    server, run_id = env["plain"], negative_run["id"]
    copy = _clone(env, "c_store")
    for target in ("/etc/passwd", str(env["outside"] / "secret.txt"), str(env["root"] / "notes.txt"),
                   str(copy / ".same" / "runs" / ".." / ".." / ".." / "notes.txt")):
        _sql(copy, "UPDATE step_runs SET log_path = ?", target)
        code, run = server.call("GET", "runs", str(run_id), params={"path": "c_store/p.ipynb"})
        assert code == 200 and [s["log_tail"] for s in run["steps"]] == [NOT_SHOWN], (target, run["steps"])
        assert "root:x:0" not in json.dumps(run)


def test_a_fifo_log_does_not_hang_the_server(env, negative_run):
    server, run_id = env["plain"], negative_run["id"]
    copy = _clone(env, "c_fifo")
    log = copy / ".same" / "runs" / str(run_id) / "background.log"
    log.unlink()
    os.mkfifo(log)
    started = time.perf_counter()
    code, run = server.call("GET", "runs", str(run_id), params={"path": "c_fifo/p.ipynb"}, timeout=10)
    assert code == 200 and run["log_tail"] == NOT_SHOWN and time.perf_counter() - started < 5


def test_executed_notebooks_outside_the_runs_folder_are_not_served(env, negative_run):
    server, run_id = env["plain"], negative_run["id"]
    copy = _clone(env, "c_exec")
    code, where = server.call("GET", "runs", str(run_id), "steps", "label", "notebook", params={"path": "c_exec"})
    assert code == 200 and where["path"] == f"c_exec/.same/runs/{run_id}/steps/label.ipynb", where
    code, model = server.call("GET", "executed", params={"path": where["path"]})
    assert code == 200 and model["writable"] is False
    _sql(copy, "UPDATE step_runs SET executed_notebook = ?", str(env["outside"] / "secret.ipynb"))
    held(server.call("GET", "runs", str(run_id), "steps", "label", "notebook", params={"path": "c_exec"}),
         "outside this folder's .same/runs/", status=404)
    executed = copy / ".same" / "runs" / str(run_id) / "steps" / "label.ipynb"
    executed.unlink()
    executed.symlink_to(env["outside"] / "secret.ipynb")
    held(server.call("GET", "executed", params={"path": where["path"]}), status=403)
    executed.unlink()
    executed.symlink_to(env["root"] / ".private" / "creds.ipynb")          # inside the root, but hidden
    held(server.call("GET", "executed", params={"path": where["path"]}), status=403)


def test_a_copied_store_shows_no_runs_of_its_original_folder(env, negative_run):
    server, run_id = env["plain"], negative_run["id"]
    _clone(env, "c_foreign", rewrite=False)
    assert server.call("GET", "runs", params={"path": "c_foreign/p.ipynb"})[1]["total"] == 0
    assert server.call("GET", "runs", params={"path": "c_foreign"})[1]["total"] == 0
    held(server.call("GET", "runs", str(run_id), params={"path": "c_foreign/p.ipynb"}), "no run", status=404)
    held(server.call("GET", "lineage", params={"path": "c_foreign", "run": str(run_id)}), "no run", status=404)
    held(server.call("POST", "runs", str(run_id), "cancel", body={"path": "c_foreign"}), "no run", status=404)
    assert server.call("GET", "metrics", params={"path": "c_foreign"})[1]["runs"] == []


# -- 4. malformed requests and damaged stores: 4xx, never 500 --------------------------------------

def test_malformed_requests_get_a_clear_4xx(env, negative_run):
    server, run_id = env["plain"], str(negative_run["id"])
    deep = b"[" * 200_000 + b"]" * 200_000
    held(server.call("POST", "runs", body=deep), "levels deep", status=400)
    held(server.call("POST", "runs", run_id, "cancel", body=b'{"path": ' + deep + b"}"), "levels deep", status=400)
    held(server.call("POST", "runs", body=b'{"path": "' + b"\\\\" * 100_000 + b'"}'))
    for bad in ("9" * 30, "9223372036854775808", "0", "0" * 20 + "1", "²", "١٢"):
        held(server.call("GET", "lineage", params={"path": "work", "run": bad}), "run id", status=400)
        if not bad.isascii():              # in the URL path: the router matches ASCII digits only (its own 404)
            assert server.call("GET", "runs", bad, params={"path": "work"})[0] == 404
            continue
        held(server.call("GET", "runs", bad, params={"path": "work"}), "run id", status=400)
        held(server.call("POST", "runs", bad, "cancel", body={"path": "work"}), "run id", status=400)
        held(server.call("GET", "runs", bad, "steps", "label", "notebook", params={"path": "work"}), "run id", status=400)
    code, page = server.call("GET", "runs", "9223372036854775807", params={"path": "work"})
    assert code == 404, page
    for name in ("limit", "offset"):
        held(server.call("GET", "runs", params={"path": "work", name: "²"}), name, status=400)
        held(server.call("GET", "runs", params={"path": "work", name: "9" * 5000}), name, status=400)
    held(server.call("GET", "lineage", params={"path": "work", "artifact": "²" * 64}), "sha256", status=400)


def test_a_store_with_garbage_in_its_middle_is_409_not_500(env, negative_run):
    server, run_id = env["plain"], str(negative_run["id"])
    # Garbage over the pages of one table: the store opens, reading those rows fails.
    copy = _clone(env, "c_pages")
    db_path = copy / ".same" / "same.db"
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'step_runs'").fetchone()[0]
    data = bytearray(db_path.read_bytes())
    data[(page - 1) * page_size:page * page_size] = os.urandom(page_size)
    db_path.write_bytes(bytes(data))
    for path in ("runs", f"runs/{run_id}", "metrics"):
        held(server.call("GET", *path.split("/"), params={"path": "c_pages/p.ipynb"}), "run store", status=409)
    # Garbage over everything between the first and the last page: the store does not even open.
    copy = _clone(env, "c_middle")
    db_path = copy / ".same" / "same.db"
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db_path.read_bytes())
    data[4096:-4096] = os.urandom(len(data) - 8192)
    db_path.write_bytes(bytes(data))
    held(server.call("GET", "runs", params={"path": "c_middle/p.ipynb"}), "run store", status=409)
    # Values of the wrong type where paths belong (SQLite keeps whatever is written): no file read, no 500.
    copy = _clone(env, "c_types")
    _sql(copy, "UPDATE step_runs SET log_path = 5, executed_notebook = 'a' || char(0) || 'b'")
    _sql(copy, "UPDATE runs SET run_dir = 7")
    code, run = server.call("GET", "runs", run_id, params={"path": "c_types/p.ipynb"})
    assert code == 200 and run["log_tail"] == NOT_SHOWN and run["steps"][0]["executed_notebook"] is None, run
    held(server.call("GET", "runs", run_id, "steps", "label", "notebook", params={"path": "c_types"}), status=404)
    # A record that does not decode (hand-edited): JSON and timestamps.
    for column, garbage in (("params", "{not json"), ("created_at", "yesterday-ish")):
        copy = _clone(env, f"c_{column}")
        _sql(copy, f"UPDATE runs SET {column} = ?", garbage)
        held(server.call("GET", "runs", params={"path": f"c_{column}/p.ipynb"}), "run store", status=409)
