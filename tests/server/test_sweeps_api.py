"""The sweep endpoints under /same-nb/api/sweeps against a real Jupyter server: start a sweep in the
background (checked first, specific errors), then read its runs as one table with the best run."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures, scoped to this module)

from server import test_handlers as base

from conftest import TESTS

# The same server settings and helpers as test_handlers.py.
api, jp_server_config, _own_store = base.api, base.jp_server_config, base._own_store
NOTEBOOKS = TESTS / "notebooks"

pytestmark = pytest.mark.slow


@pytest.fixture
def root(jp_root_dir) -> Path:
    work = Path(jp_root_dir) / "work"
    work.mkdir()
    shutil.copy(NOTEBOOKS / "sweep_grid.ipynb", work / "sweep_grid.ipynb")
    return Path(jp_root_dir)


def wait_for_sweep(api, sweep_id: str, runs: int, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    table: dict = {}
    while time.time() < deadline:
        code, table = api("GET", "sweeps", sweep_id, params={"path": "work/sweep_grid.ipynb", "best": "loss"})
        if code == 200 and len(table["runs"]) == runs and all(
                r["status"] in ("success", "failed") for r in table["runs"]):
            return table
        time.sleep(0.5)
    raise AssertionError(f"sweep {sweep_id} not finished after {timeout}s: {table}")


def test_start_a_sweep_then_read_its_table_with_the_best_run(api, root):
    code, started = api("POST", "sweeps", body={"path": "work/sweep_grid.ipynb", "grid": {"scale": ["1", "2"]},
                                                "params": {"seed": "3"}, "jobs": 2})
    assert code == 202, started
    assert started["runs"] == 2 and started["path"] == "work/sweep_grid.ipynb"
    table = wait_for_sweep(api, started["sweep_id"], 2)
    assert [r["values"] for r in table["runs"]] == [{"scale": 1.0}, {"scale": 2.0}]
    assert [r["metrics"]["loss"] for r in table["runs"]] == [5.0, 7.0]
    assert table["best"] == {"run_id": table["runs"][0]["id"], "metric": "loss", "direction": "min", "value": 5.0}
    assert all(r["path"] == "work/sweep_grid.ipynb" and "run_dir" not in r for r in table["runs"])
    code, listed = api("GET", "runs", params={"path": "work/sweep_grid.ipynb"})
    assert {r["sweep_id"] for r in listed["runs"]} == {started["sweep_id"]}
    code, reply = api("GET", "sweeps", "no-such-sweep", params={"path": "work/sweep_grid.ipynb"})
    assert code == 404 and "there is no sweep 'no-such-sweep'" in reply["message"], reply


@pytest.mark.parametrize("body, message", [
    ({"grid": {"nope": ["1"]}}, "unknown parameter 'nope'"),
    ({"grid": {"seed": []}}, "parameter 'seed' (from grid seed) has no values to sweep"),
    ({"grid": {"seed": ["x"]}}, "parameter 'seed' expects int (default 0), got 'x' from grid seed"),
    ({"grid": {"seed": ["1"]}, "params": {"seed": "2"}}, "both fixed with -p/--params and swept"),
    ({"grid": {"seed": "1,2"}}, "grid must map each parameter to a list of values"),
    ({"grid": {"seed": ["1"]}, "jobs": 0}, "jobs must be an integer from 1 to"),
])
def test_bad_sweeps_are_refused_before_anything_starts(api, root, body, message):
    code, reply = api("POST", "sweeps", body={"path": "work/sweep_grid.ipynb", **body})
    assert code == 400 and message in reply["message"], reply
    assert not (root / "work" / ".same" / "sweeps").exists()


def test_an_unknown_sweep_is_404(api, root):
    code, reply = api("GET", "sweeps", "no-such-sweep", params={"path": "work/sweep_grid.ipynb"})
    assert code == 404, reply


def test_cancel_stops_a_running_sweep_its_runs_and_their_kernels(api, root):
    import json

    from same_nb.background import descendants

    nb = json.loads((NOTEBOOKS / "sweep_grid.ipynb").read_text())
    fit = next(c for c in nb["cells"] if "step:fit" in c["metadata"].get("tags", []))
    fit["source"] = "import time\ntime.sleep(120)\n" + "".join(fit["source"])
    (root / "work" / "slow_sweep.ipynb").write_text(json.dumps(nb))
    path = "work/slow_sweep.ipynb"
    code, started = api("POST", "sweeps", body={"path": path, "grid": {"scale": ["1", "2", "3"]}})
    assert code == 202, started
    sweep_id = started["sweep_id"]
    deadline, table = time.time() + 120, {}
    while time.time() < deadline:                       # until a grid point is inside the slow step
        code, table = api("GET", "sweeps", sweep_id, params={"path": path})
        if code == 200 and any(r["status"] == "running" for r in table["runs"]):
            run_id = next(r["id"] for r in table["runs"] if r["status"] == "running")
            code, run = api("GET", "runs", str(run_id), params={"path": path})
            if any(s["step_name"] == "fit" and s["status"] == "running" for s in run["steps"]):
                break
        time.sleep(0.3)
    else:
        raise AssertionError(f"no grid point reached the slow step: {table}")
    assert table["process"] == {"running": True, "runs": 3}
    kernels = descendants(started_pid := _sweep_pid(root, sweep_id))
    assert kernels, "the sweep process runs its steps' kernels below it"

    # One run of a sweep is not cancelled alone: the answer says how to stop the sweep.
    code, reply = api("POST", "runs", str(run_id), "cancel", body={"path": path})
    assert code == 409 and f"is a point of sweep {sweep_id}: cancel the sweep" in reply["message"], reply

    code, reply = api("POST", "sweeps", sweep_id, "cancel", body={"path": path})
    assert code == 200 and reply["stopped"] is True, reply
    assert reply["message"].startswith(f"sweep {sweep_id} cancelled after SIGINT"), reply
    assert reply["runs"] and all(r["status"] in ("cancelled", "success") for r in reply["runs"]), reply
    assert any(r["status"] == "cancelled" for r in reply["runs"])
    assert not Path(f"/proc/{started_pid}").exists() or "Z" in Path(f"/proc/{started_pid}/stat").read_text().split()[2]
    assert not [p for p in kernels if Path(f"/proc/{p}").exists()
                and Path(f"/proc/{p}/stat").read_text().split(") ")[1][0] != "Z"], "a step kernel outlived the sweep"
    code, run = api("GET", "runs", str(run_id), params={"path": path})
    assert run["status"] == "cancelled"
    assert {s["step_name"]: s["status"] for s in run["steps"]}["fit"] == "cancelled"
    code, table = api("GET", "sweeps", sweep_id, params={"path": path})
    assert table["process"]["running"] is False
    code, reply = api("POST", "sweeps", sweep_id, "cancel", body={"path": path})
    assert code == 409 and "has already ended" in reply["message"], reply


def _sweep_pid(root: Path, sweep_id: str) -> int:
    import json

    return json.loads((root / "work" / ".same" / "sweeps" / sweep_id / "process.json").read_text())["pid"]


def test_a_sweep_started_elsewhere_is_not_cancelled_here(api, root):
    from same_nb.frontend.sweep import Axis
    from same_nb.service import run_sweep

    result = run_sweep(root / "work" / "sweep_grid.ipynb", [Axis("scale", ["1", "2"], "--sweep scale")], jobs=2)
    code, reply = api("POST", "sweeps", result.sweep_id, "cancel", body={"path": "work/sweep_grid.ipynb"})
    assert code == 409 and "was not started in the background here" in reply["message"], reply
    code, reply = api("POST", "sweeps", "no-such-sweep", "cancel", body={"path": "work/sweep_grid.ipynb"})
    assert code == 404, reply
