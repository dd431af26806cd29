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
