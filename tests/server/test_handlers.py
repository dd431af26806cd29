"""The REST API under /same-nb/api/ against a real Jupyter server (pytest-jupyter's jp_fetch).

pytest-jupyter's fixtures are imported into this module rather than registered as a plugin, so its
autouse event-loop fixtures apply here only; tests are plain functions that drive the loop.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures, scoped to this module)
from tornado.httpclient import HTTPClientError

from conftest import TESTS

NOTEBOOKS = TESTS / "notebooks"
pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"same_nb.server": True}}}


@pytest.fixture(autouse=True)
def _own_store(monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)


@pytest.fixture
def api(jp_fetch, jp_asyncio_loop):
    """call(method, *path parts, params=, body=, headers=) -> (status, JSON reply), errors included."""

    def call(method: str, *parts: str, params: dict | None = None, body=None, headers=None):
        kwargs = {"method": method, "params": params, "headers": headers}
        if method == "POST":
            kwargs["body"] = body if isinstance(body, (bytes, str)) else json.dumps(body or {})
        try:
            response = jp_asyncio_loop.run_until_complete(jp_fetch("same-nb", "api", *parts, **kwargs))
        except HTTPClientError as exc:
            response = exc.response
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text.startswith(("{", "[")) else text)

    return call


@pytest.fixture
def root(jp_root_dir) -> Path:
    work = Path(jp_root_dir) / "work"
    work.mkdir()
    for name in ("branching.ipynb", "error_not_json.ipynb", "error_invalid_step_name.ipynb"):
        shutil.copy(NOTEBOOKS / name, work / name)
    return Path(jp_root_dir)


def wait_for_run(api, run_id: int, path: str, until=("success", "failed", "cancelled", "interrupted"),
                 timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, run = api("GET", "runs", str(run_id), params={"path": path})
        assert code == 200, run
        if run["status"] in until:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s: {run.get('log_tail')}")


ENDPOINTS = [("GET", ("inspect",)), ("GET", ("runs",)), ("POST", ("runs",)), ("GET", ("runs", "1")),
             ("POST", ("runs", "1", "cancel")), ("GET", ("runs", "1", "steps", "load", "notebook")),
             ("GET", ("executed",)), ("GET", ("lineage",)), ("GET", ("metrics",))]


@pytest.mark.parametrize("method,parts", ENDPOINTS)
def test_every_endpoint_refuses_requests_without_a_token(api, root, method, parts):
    code, _ = api(method, *parts, params={"path": "work/branching.ipynb"},
                  body={"path": "work/branching.ipynb"}, headers={"Authorization": ""})
    assert code == 403
    code, _ = api(method, *parts, params={"path": "work/branching.ipynb"},
                  body={"path": "work/branching.ipynb"}, headers={"Authorization": "token wrong"})
    assert code == 403


PATH_TAKING = [("GET", ("inspect",)), ("GET", ("runs",)), ("POST", ("runs",)), ("GET", ("runs", "1")),
               ("GET", ("executed",)), ("GET", ("lineage",)), ("GET", ("metrics",))]


@pytest.mark.parametrize("method,parts", PATH_TAKING)
def test_paths_outside_the_server_root_are_refused(api, root, tmp_path, method, parts):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(NOTEBOOKS / "branching.ipynb", outside / "secret.ipynb")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "work" / "alias.ipynb").symlink_to(outside / "secret.ipynb")
    cases = [("../outside/secret.ipynb", 400, "'..'"), ("work/../../outside/secret.ipynb", 400, "'..'"),
             (str(outside / "secret.ipynb"), 400, "absolute"), ("link/secret.ipynb", 403, "outside"),
             ("work/alias.ipynb", 403, "outside")]
    for path, status, words in cases:
        code, reply = api(method, *parts, params={"path": path, "run": "1"}, body={"path": path})
        assert code == status, (path, reply)
        assert words in reply["message"], reply
        assert reply["error"]["path"] == path


def test_inspect_returns_steps_dag_and_parameters(api, root):
    code, data = api("GET", "inspect", params={"path": "work/branching.ipynb"})
    assert code == 200
    assert data["ok"] is True and data["path"] == "work/branching.ipynb"
    assert [s["name"] for s in data["pipeline"]["steps"]] == ["load", "left", "right", "join"]
    assert data["levels"] == [["load"], ["left", "right"], ["join"]]
    assert data["pipeline"]["parameters"][0] | {"line": None} == {"name": "n", "default": 6, "type": "int",
                                                                  "line": None}
    join = data["pipeline"]["steps"][3]
    assert {i["name"]: i["producer"] for i in join["inputs"]} == {"left": "left", "right": "right"}
    # Looking creates nothing beside the notebook: no store until a run starts.
    assert api("GET", "runs", params={"path": "work/branching.ipynb"}) == (
        200, {"total": 0, "limit": 20, "offset": 0, "runs": [], "latest_id": None})
    assert api("GET", "metrics", params={"path": "work"}) == (200, {"runs": [], "metrics": []})
    assert not (root / "work" / ".same").exists()


def test_bad_notebooks_get_400_with_the_message(api, root):
    code, reply = api("GET", "inspect", params={"path": "work/error_not_json.ipynb"})
    assert code == 400 and reply["message"].startswith("not valid JSON")
    assert reply["error"]["path"] == "work/error_not_json.ipynb"       # relative, not the server's disk path
    code, reply = api("GET", "inspect", params={"path": "work/error_invalid_step_name.ipynb"})
    assert code == 400 and "invalid step name 'bad name!'" in reply["message"]
    assert reply["error"]["cell"] == 1
    code, reply = api("POST", "runs", body={"path": "work/error_invalid_step_name.ipynb"})
    assert code == 400 and "invalid step name" in reply["message"]
    code, reply = api("GET", "inspect", params={"path": "work/missing.ipynb"})
    assert code == 404 and reply["message"] == "no such notebook"
    (root / "notes.txt").write_text("hi")
    code, reply = api("GET", "inspect", params={"path": "notes.txt"})
    assert code == 400 and "not a notebook" in reply["message"]


def test_bad_run_requests_are_refused(api, root):
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "params": {"alpha": "1"}})
    assert code == 400 and "unknown parameter 'alpha'" in reply["message"]
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "params": {"n": "six"}})
    assert code == 400 and "expects int" in reply["message"]
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "params": {"n": 6}})
    assert code == 400 and "written as text" in reply["message"]
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "target": "kubeflow"})
    assert code == 400 and "needs the Kubeflow Pipelines host" in reply["message"]
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "target": "kubeflow",
                                            "host": "http://127.0.0.1:9"})
    assert code == 400 and "cannot reach Kubeflow Pipelines at http://127.0.0.1:9" in reply["message"]
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "target": "cloud"})
    assert code == 400 and "unknown target 'cloud'" in reply["message"]
    code, reply = api("POST", "runs", body=b"[1, 2")
    assert code == 400 and "not JSON" in reply["message"]
    code, reply = api("POST", "runs", body=json.dumps({"path": "work/branching.ipynb", "pad": "x" * 1_100_000}))
    assert code == 413 and "request body over" in reply["message"]
    code, reply = api("GET", "runs", params={"path": "work", "limit": "-1"})
    assert code == 400 and "limit" in reply["message"]
    code, reply = api("GET", "runs", "99", params={"path": "work"})
    assert code == 404 and "no runs are recorded" in reply["message"]
    assert not (root / "work" / ".same" / "runs").exists() or not any((root / "work" / ".same" / "runs").iterdir())


def test_a_started_run_reaches_success_and_its_records_are_served(api, root):
    started = time.perf_counter()
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "params": {"n": "3"}})
    assert code == 202 and reply["status"] == "running", reply
    assert time.perf_counter() - started < 5           # the id comes back before the run ends
    run_id = reply["run_id"]
    run = wait_for_run(api, run_id, "work/branching.ipynb")
    assert run["status"] == "success", run["log_tail"]
    assert run["params"] == {"n": 3} and run["path"] == "work/branching.ipynb"
    assert "notebook_path" not in run and "success" in run["log_tail"]
    steps = {s["step_name"]: s for s in run["steps"]}
    assert set(steps) == {"load", "left", "right", "join"}
    assert all(s["status"] == "success" and s["duration_s"] > 0 and not s["cache_hit"] for s in steps.values())
    assert steps["join"]["executed_notebook"] == f"work/.same/runs/{run_id}/steps/join.ipynb"

    code, page = api("GET", "runs", params={"path": "work/branching.ipynb"})
    assert code == 200 and page["total"] == 1 and page["runs"][0]["id"] == run_id
    assert page["runs"][0]["step_counts"] == {"success": 4} and page["notes"] == []

    code, where = api("GET", "runs", str(run_id), "steps", "join", "notebook", params={"path": "work"})
    assert code == 200 and where["path"] == steps["join"]["executed_notebook"]
    code, model = api("GET", "executed", params={"path": where["path"]})
    assert code == 200 and model["type"] == "notebook" and model["writable"] is False
    assert any("joined" in "".join(c["source"]) for c in model["content"]["cells"])
    code, reply = api("GET", "executed", params={"path": "work/branching.ipynb"})
    assert code == 403 and "executed step notebooks" in reply["message"]

    code, graph = api("GET", "lineage", params={"path": "work", "run": str(run_id)})
    assert code == 200
    kinds = [n["kind"] for n in graph["nodes"]]
    assert kinds.count("step_run") == 4 and kinds.count("artifact") == 3       # base, left, right
    labels = {n["id"]: n["label"] for n in graph["nodes"]}
    into_join = sorted(labels[e["source"]] for e in graph["edges"] if labels[e["target"]].startswith("join"))
    assert into_join == ["left", "right"]

    right = next(n for n in graph["nodes"] if n["label"] == "right")
    code, trace = api("GET", "lineage", params={"path": "work", "artifact": right["data"]["sha256"]})
    assert code == 200 and trace["root"] == right["id"]
    assert sorted(n["label"] for n in trace["nodes"]) == sorted(
        ["right", f"right (run {run_id})", "base", f"load (run {run_id})"])

    # A second run with the same parameters is served from the cache, and traced across runs.
    code, reply = api("POST", "runs", body={"path": "work/branching.ipynb", "params": {"n": "3"}})
    second = wait_for_run(api, reply["run_id"], "work/branching.ipynb")
    assert second["status"] == "success"
    assert all(s["cache_hit"] and s["status"] == "cached" for s in second["steps"])
    code, page = api("GET", "runs", params={"path": "work", "limit": "1", "offset": "1"})
    assert page["total"] == 2 and [r["id"] for r in page["runs"]] == [run_id]
    code, metrics = api("GET", "metrics", params={"path": "work/branching.ipynb"})
    assert code == 200 and metrics["runs"] == [reply["run_id"], run_id]
    code, reply = api("POST", "runs", str(run_id), "cancel", body={"path": "work"})
    assert code == 409 and "is success" in reply["message"]
    code, reply = api("GET", "runs", "99", params={"path": "work"})
    assert code == 404 and "there is no run 99" in reply["message"]


def test_cancel_stops_a_background_run_and_refuses_other_processes(api, root):
    nb = json.loads((NOTEBOOKS / "branching.ipynb").read_text())
    nb["cells"][2]["source"] = "import time\ntime.sleep(60)\nleft = [b * 2 for b in base]"
    (root / "work" / "slow.ipynb").write_text(json.dumps(nb))
    code, reply = api("POST", "runs", body={"path": "work/slow.ipynb"})
    assert code == 202
    run_id = reply["run_id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        run = wait_for_run(api, run_id, "work", until=("running",))
        if any(s["step_name"] == "left" and s["status"] == "running" for s in run["steps"]):
            break
        time.sleep(0.3)
    code, reply = api("POST", "runs", str(run_id), "cancel", body={"path": "work"})
    assert code == 200 and reply["stopped"] is True and reply["status"] == "cancelled", reply
    assert reply["message"].startswith(f"run {run_id} cancelled after SIGINT")
    code, run = api("GET", "runs", str(run_id), params={"path": "work"})       # answered once it stopped
    assert run["status"] == "cancelled"
    assert {s["step_name"]: s["status"] for s in run["steps"]}["left"] == "cancelled"

    # A run driven by some other process (here: this test) is never signalled.
    from same_nb.store.database import open_store

    with open_store(notebook_dir=root / "work") as store:
        other = store.create_run(notebook_path=root / "work" / "slow.ipynb", notebook_sha256="0" * 64,
                                 pipeline_name="slow", params={}, target="local",
                                 run_dir_root=root / "work" / ".same" / "runs")
    code, reply = api("POST", "runs", str(other), "cancel", body={"path": "work"})
    assert code == 409 and "not started in the background" in reply["message"]
    assert reply["stopped"] is False and reply["run_id"] == other
