"""The sidebar's newer endpoints on a real Jupyter server (jp_fetch) over real runs: inspecting the
editor's unsaved notebook, run labels, the newest run id, comparing runs, and lineage that flags files
changed since their run."""
from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures, scoped to this module)
from store import test_lineage

from server import test_handlers as base

from conftest import TESTS, notebook_data

# The same server settings and helpers as test_handlers.py.
api, jp_server_config, _own_store, wait_for_run = base.api, base.jp_server_config, base._own_store, base.wait_for_run

NOTEBOOKS = TESTS / "notebooks"
pytestmark = pytest.mark.slow

CELLS = test_lineage.CELLS


@pytest.fixture
def root(jp_root_dir) -> Path:
    work = Path(jp_root_dir) / "work"
    work.mkdir()
    shutil.copy(NOTEBOOKS / "branching.ipynb", work / "branching.ipynb")
    (work / "data.txt").write_text("1 2 3\n")
    (work / "model.ipynb").write_text(json.dumps(notebook_data(CELLS), indent=1))
    return Path(jp_root_dir)


def branching() -> dict:
    return json.loads((NOTEBOOKS / "branching.ipynb").read_text())


def test_inspect_analyses_the_unsaved_notebook_and_writes_nothing(api, root):
    saved = (root / "work" / "branching.ipynb").read_bytes()
    (root / "work" / "same.yaml").write_text("apiVersion: same-nb/v1\nmetadata:\n  name: from-yaml\n")
    edited = branching()
    edited["cells"].append({"cell_type": "code", "id": "extra", "metadata": {"tags": ["step:report"]},
                            "execution_count": 3, "source": "print(count)",
                            "outputs": [{"output_type": "display_data", "metadata": {},
                                         "data": {"image/png": "iVBORw0" * 300_000}}]})   # 2 MB, ignored
    code, data = api("POST", "inspect", body={"path": "work/branching.ipynb", "content": edited})
    assert code == 200, data
    assert data["path"] == "work/branching.ipynb" and data["ok"] is True
    assert [s["name"] for s in data["pipeline"]["steps"]] == ["load", "left", "right", "join", "report"]
    assert data["levels"][-1] == ["report"] and data["pipeline"]["name"] == "from-yaml"   # same.yaml beside it
    report = data["pipeline"]["steps"][-1]
    assert {i["name"]: i["producer"] for i in report["inputs"]} == {"count": "join"}
    # The text form (a string of JSON) is the same notebook.
    code, again = api("POST", "inspect", body={"path": "work/branching.ipynb", "content": json.dumps(edited)})
    assert code == 200 and again["pipeline"]["steps"] == data["pipeline"]["steps"]
    # The saved file is untouched and still inspects as it was; nothing was written beside it.
    assert (root / "work" / "branching.ipynb").read_bytes() == saved
    code, disk = api("GET", "inspect", params={"path": "work/branching.ipynb"})
    assert [s["name"] for s in disk["pipeline"]["steps"]] == ["load", "left", "right", "join"]
    assert sorted(p.name for p in (root / "work").iterdir()) == ["branching.ipynb", "data.txt", "model.ipynb",
                                                                 "same.yaml"]


def test_inspect_of_bad_unsaved_content_says_what_is_wrong(api, root):
    path = "work/branching.ipynb"
    cases = [
        ({"path": path}, 400, "give the notebook's unsaved JSON as 'content'"),
        ({"path": path, "content": "{not json"}, 400, "invalid notebook JSON in 'content': Expecting property name"),
        ({"path": path, "content": [1, 2]}, 400, "'content' must be the notebook's nbformat JSON object, not list"),
        ({"path": path, "content": {"nbformat": 4, "cells": {}}}, 400, "invalid notebook: 'cells' is not a list"),
        ({"path": path, "content": {"cells": []}}, 400, "missing or invalid 'nbformat' version"),
        ({"path": path, "content": {**branching(), "cells": [{"source": "x = 1", "metadata": {}}]}}, 400,
         "invalid notebook"),
        ({"path": path, "content": {**branching(), "cells": []}}, 400, "the notebook has no code cells"),
        ({"path": "work/missing.ipynb", "content": branching()}, 404, "no such notebook"),
    ]
    for body, status, words in cases:
        code, reply = api("POST", "inspect", body=body)
        assert code == status and words in reply["message"], (body.get("content"), code, reply)
    bad_step = branching()
    bad_step["cells"][1]["metadata"]["tags"] = ["step:bad name!"]
    code, reply = api("POST", "inspect", body={"path": path, "content": bad_step})
    assert code == 400 and "invalid step name 'bad name!'" in reply["message"] and reply["error"]["cell"] == 2
    assert reply["error"]["path"] == path                       # relative, never the server's disk path
    huge = json.dumps({"path": path, "content": {**branching(), "metadata": {"pad": "x" * (17 * 2**20)}}})
    code, reply = api("POST", "inspect", body=huge)
    assert code == 413 and "over the 16 MB the server analyses from the editor" in reply["message"], reply


def test_inspecting_unsaved_content_is_fast(api, root):
    content = branching()
    api("POST", "inspect", body={"path": "work/branching.ipynb", "content": content})      # a warm worker
    times = []
    for i in range(20):
        content["cells"][2]["source"] = f"left = [b * {i} for b in base]"                  # an edit each time
        started = time.perf_counter()
        code, _ = api("POST", "inspect", body={"path": "work/branching.ipynb", "content": content})
        times.append(time.perf_counter() - started)
        assert code == 200
    median = statistics.median(times)
    print(f"inspect with content: median {median * 1000:.1f} ms, max {max(times) * 1000:.1f} ms over 20 calls")
    assert median < 0.5


def run_model(api, scale: str) -> int:
    code, reply = api("POST", "runs", body={"path": "work/model.ipynb", "params": {"scale": scale}})
    assert code == 202, reply
    run = wait_for_run(api, reply["run_id"], "work/model.ipynb")
    assert run["status"] == "success", run["log_tail"]
    assert all({"kernel_wait_s", "compute_s", "duration_s"} <= set(s) for s in run["steps"])
    # each step's resources, for the sidebar: measured where it ran, bytes where it passed data
    ran = [s for s in run["steps"] if s["status"] == "success"]
    assert ran and all(s["cpu_s"] > 0 and s["peak_rss_bytes"] is not None for s in ran)
    assert all(s["bytes_in"] is not None and s["bytes_out"] is not None for s in ran)
    assert (run["name"], run["note"]) == (None, None)
    return run["id"]


def test_labels_newest_run_comparison_and_changed_files(api, root):
    r1, r2, r3 = (run_model(api, scale) for scale in ("2", "3", "4"))

    # The page: the newest run whatever the page, with labels and metrics per row.
    code, page = api("GET", "runs", params={"path": "work/model.ipynb", "limit": "1", "offset": "2"})
    assert code == 200 and [r["id"] for r in page["runs"]] == [r1] and page["latest_id"] == r3
    first = page["runs"][0]
    assert first["name"] is None and first["note"] is None and first["metrics"] == {"report.total": 12.0}

    # Labels: set, show, clear; bad ones refused with the reason.
    code, run = api("POST", "runs", str(r1), body={"path": "work", "name": "  baseline ", "note": "scale 2"})
    assert code == 200 and run["id"] == r1 and (run["name"], run["note"]) == ("baseline", "scale 2"), run
    assert run["path"] == "work/model.ipynb" and "notebook_path" not in run
    code, page = api("GET", "runs", params={"path": "work"})
    assert [(r["id"], r["name"]) for r in page["runs"]] == [(r3, None), (r2, None), (r1, "baseline")]
    code, run = api("POST", "runs", str(r1), body={"path": "work", "note": None})
    assert (run["name"], run["note"]) == ("baseline", None)
    for body, words in (({"path": "work"}, "give a 'name' or a 'note'"),
                        ({"path": "work", "name": 7}, "the name must be text or null"),
                        ({"path": "work", "note": "x" * 100_000}, "the limit is")):
        code, reply = api("POST", "runs", str(r1), body=body)
        assert code == 400 and words in reply["message"], reply
    code, reply = api("POST", "runs", "999", body={"path": "work", "name": "x"})
    assert code == 404 and "there is no run 999" in reply["message"]

    # Compare three runs: one value per run in every list.
    code, diff = api("GET", "compare", params={"path": "work/model.ipynb", "runs": f"{r1},{r2},{r3}"})
    assert code == 200, diff
    assert diff["runs"] == [r1, r2, r3] and diff["identical"] is False
    assert diff["params"] == {"scale": [2, 3, 4]} and len(diff["notebook_sha256"]) == 3
    assert diff["steps"]["report"]["metrics"] == {"total": [12.0, 18.0, 24.0]}
    assert diff["steps"]["load"]["status"] == ["success", "cached", "cached"]
    assert all(len(v) == 3 for v in diff["steps"]["train"]["outputs"].values())
    assert set(diff["steps"]["train"]["outputs"]) == {"model", "model.json (file)"}
    assert diff["notebook"] == ["work/model.ipynb"] * 3
    train = diff["steps"]["train"]["resources"]
    assert all(v > 0 for v in train["cpu_s"]) and all(v > 0 for v in train["bytes_out"])
    assert diff["steps"]["load"]["resources"]["cpu_s"][1:] == [None, None]     # cached: nothing ran
    assert diff["flags"] == []                                                 # no step grew 2x
    code, same = api("GET", "compare", params={"path": "work", "runs": f"{r2},{r1}"})
    assert same["runs"] == [r2, r1] and same["params"] == {"scale": [3, 2]}
    for runs, status, words in ((str(r1), 400, "give from 2 to 20"), (f"{r1},{r1}", 400, "give from 2 to 20"),
                                (",".join(map(str, range(1, 23))), 400, "give from 2 to 20"),
                                (f"{r1},x", 400, "run ids separated by commas"), ("", 400, "runs must be"),
                                (f"{r1},999", 404, "there is no run 999")):
        code, reply = api("GET", "compare", params={"path": "work", "runs": runs})
        assert code == status and words in reply["message"], (runs, reply)

    # Lineage of run 3's model.json: sha256, producing run and step on every node; files changed since flagged.
    code, graph = api("GET", "lineage", params={"path": "work", "run": str(r3)})
    model_json = next(n for n in graph["nodes"] if n["label"] == "model.json")
    sha = model_json["data"]["sha256"]
    code, trace = api("GET", "lineage", params={"path": "work", "artifact": sha})
    assert code == 200, trace
    nodes = {n["label"]: n for n in trace["nodes"]}
    assert nodes["model.json"]["data"]["modified"] is None and nodes["data.txt"]["data"]["modified"] is None
    assert all(len(n["data"]["sha256"]) == 64 for n in trace["nodes"] if n["kind"] == "artifact")
    steps = {n["data"]["step_name"]: n["data"] for n in trace["nodes"] if n["kind"] == "step_run"}
    assert steps["train"]["run_id"] == r3 and steps["load"]["run_id"] == r1      # load was cached after run 1
    made = {e["target"]: e["source"] for e in trace["edges"] if e["kind"] == "output"}
    assert made[nodes["model.json"]["id"]] == f"step_run:{steps['train']['id']}"
    (root / "work" / "data.txt").write_text("1 2 3 4\n")
    (root / "work" / "model.json").write_text("[]")
    code, trace = api("GET", "lineage", params={"path": "work", "artifact": sha})
    nodes = {n["label"]: n for n in trace["nodes"]}
    assert nodes["data.txt"]["data"]["modified"] == f"modified since run {r1}: hash differs"
    assert nodes["model.json"]["data"]["modified"] == f"modified since run {r3}: hash differs"
    assert nodes["data.txt"]["data"]["location"] == "work/data.txt"
    (root / "work" / "data.txt").unlink()
    code, trace = api("GET", "lineage", params={"path": "work", "artifact": sha})
    nodes = {n["label"]: n for n in trace["nodes"]}
    assert nodes["data.txt"]["data"]["modified"] == f"missing: deleted or moved since run {r1}"
