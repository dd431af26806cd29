"""GET /same-nb/api/drift and the drift in /same-nb/api/compare, on a real Jupyter server over real runs of
drift_shift.ipynb (run 2 shifts the `income` column by 1.2 standard deviations)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (fixtures, scoped to this module)

from server import test_handlers as base

from conftest import TESTS

api, jp_server_config, _own_store, wait_for_run = base.api, base.jp_server_config, base._own_store, base.wait_for_run
pytestmark = pytest.mark.slow
NB = "work/drift_shift.ipynb"


@pytest.fixture
def root(jp_root_dir) -> Path:
    (Path(jp_root_dir) / "work").mkdir()
    shutil.copy(TESTS / "notebooks" / "drift_shift.ipynb", Path(jp_root_dir) / NB)
    return Path(jp_root_dir)


def run(api, **params) -> int:
    code, reply = api("POST", "runs", body={"path": NB, "params": params})
    assert code == 202, reply
    done = wait_for_run(api, reply["run_id"], NB)
    assert done["status"] == "success", done.get("log_tail")
    return done["id"]


def test_drifted_runs_and_compare_drift(api, root):
    first, shifted = run(api), run(api, shift="12")
    code, result = api("GET", "drift", params={"path": NB})
    assert code == 200, result
    assert [r["id"] for r in result["runs"]] == [shifted] and result["no_baseline"] == [first]
    worst = result["runs"][0]["worst"]
    assert result["runs"][0]["baseline"] == first and worst["step"] == "report" and worst["psi"] > 0.25
    assert result["runs"][0]["notebook"] == NB and "notebook_path" not in result["runs"][0]
    code, none = api("GET", "drift", params={"path": "work", "threshold": "100"})
    assert code == 200 and none["runs"] == [] and none["threshold"] == 100
    code, diff = api("GET", "compare", params={"path": NB, "runs": f"{first},{shifted}"})
    df = next(a for a in diff["drift"][0]["artifacts"] if a["variable"] == "df")
    assert {c["name"]: c["psi"] > 0.25 for c in df["columns"]} == {"income": True, "age": False, "city": False}
    for params, status, words in (({"threshold": "x"}, 400, "threshold must be a PSI above 0"),
                                  ({"threshold": "0"}, 400, "threshold must be a PSI above 0"),
                                  ({"threshold": "nan"}, 400, "threshold must be a PSI above 0"),
                                  ({"baseline": "999"}, 404, "there is no run 999"),
                                  ({"baseline": "-1"}, 400, "")):
        code, reply = api("GET", "drift", params={"path": NB, **params})
        assert code == status and words in reply["message"], reply
