"""Drift between real runs of drift_shift.ipynb (a parameter shifts one column, another adds one), recorded
in SQLite and in PostgreSQL: compare, runs --drift, and the profiles written for frames, Series and arrays."""
from __future__ import annotations

import json

import pytest

from same_nb.local.progress import make_progress
from same_nb.runtime.profile import profile_path, read_profile
from same_nb.service import compare_runs, data_drift, drifted_runs, run_notebook
from same_nb.store.database import open_store
from same_nb.store.drift_report import render_drift, render_drifted_runs

from postgres_server import fresh_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def runs(request, module_notebook_copy):
    """Runs 1: shift 0; 2: income shifted by 0.8 standard deviations; 3: shift 0 plus a column."""
    nb = module_notebook_copy("drift_shift")
    drop = None
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "postgresql":
            url, drop = fresh_database()
            mp.setenv("SAME_NB_DB", url)
        quiet = make_progress(quiet=True)
        done = [run_notebook(nb, progress=quiet), run_notebook(nb, params=[("shift", "8")], progress=quiet),
                run_notebook(nb, params=[("extra_column", "True")], progress=quiet)]
        assert all(r.ok for r in done), [r.status for r in done]
        store = open_store(notebook_dir=nb.parent)
        yield nb, store, [r.run_id for r in done]
        store.close()
    if drop:
        drop()


def _artifact(drift: dict, variable: str, step: str = "load") -> dict:
    return next(a for a in drift["artifacts"] if (a["step"], a["variable"]) == (step, variable))


def test_the_shifted_column_drifts_and_the_unchanged_ones_do_not(runs):
    _, store, (first, shifted, _) = runs
    df = _artifact(data_drift(store, first, shifted), "df")
    columns = {c["name"]: c for c in df["columns"]}
    assert columns["income"]["psi"] > 0.25 and columns["income"]["ks"] > 0.2
    assert columns["age"]["psi"] == 0 and columns["city"]["psi"] == 0
    assert df["schema"] == []
    series = _artifact(data_drift(store, first, shifted), "incomes")
    assert series["columns"][0]["psi"] > 0.25
    ages = _artifact(data_drift(store, first, shifted), "ages")       # saved in one group with df: a
    assert not ages["identical"] and ages["columns"][0]["psi"] == 0   # new artifact, the same values


def test_compare_reports_drift_in_text_and_json(runs):
    _, store, (first, shifted, _) = runs
    diff = compare_runs(store, [first, shifted])
    assert json.loads(json.dumps(diff, default=str))["drift"][0]["run"] == shifted
    text = render_drift(diff["drift"][0])
    assert "load.df" in text and "income: PSI" in text and "significant" in text
    assert "age:" not in text and "2 column(s) stable" in text


def test_schema_change_is_reported(runs):
    _, store, (first, _, extra) = runs
    df = _artifact(data_drift(store, first, extra), "df")
    assert df["schema"] == [{"change": "added", "column": "score", "from": None, "to": "float64"}]
    assert "column 'score' added (float64)" in render_drift(data_drift(store, first, extra))


def test_runs_drift_lists_runs_whose_inputs_drifted_with_the_worst_column(runs):
    nb, store, (first, shifted, extra) = runs
    result = drifted_runs(store, notebook_path=nb)
    by_id = {r["id"]: r for r in result["runs"]}
    assert result["no_baseline"] == [first] and set(by_id) == {shifted, extra}
    assert by_id[shifted]["baseline"] == first
    assert by_id[shifted]["worst"]["step"] == "report"           # what the step read
    assert by_id[shifted]["worst"]["column"] in ("income", "0", "incomes")
    assert by_id[extra]["baseline"] == shifted and by_id[extra]["schema"][0]["column"] == "score"
    fixed = drifted_runs(store, notebook_path=nb, baseline=first)
    assert {r["id"] for r in fixed["runs"]} == {shifted, extra}
    text = render_drifted_runs(fixed)
    assert f"run {shifted} vs run {first}: worst report." in text and "column 'score' added" in text


def test_profiles_are_written_for_frames_series_and_arrays(runs):
    nb, store, (first, *_) = runs
    run = store.get_run(first)
    load = next(s for s in run["steps"] if s["step_name"] == "load")
    root = nb.parent / ".same" / "artifacts"
    kinds = {r["name"]: read_profile(root, r["sha256"], r["name"])["kind"] for r in load["outputs"]}
    assert kinds == {"df": "dataframe", "incomes": "series", "ages": "ndarray"}
    # df, incomes and ages share objects (the index, the buffer), so they were saved as one group artifact
    # and its sidecar holds a profile per name
    [sha] = {r["sha256"] for r in load["outputs"]}
    assert sorted(json.loads(profile_path(root, sha).read_text())["group"]) == ["ages", "df", "incomes"]
