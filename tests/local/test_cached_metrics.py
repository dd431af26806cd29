"""A cached step keeps its metrics: the step run that reuses another exposes the metrics that run
logged, to `show`, the metrics API and comparisons. Real kernels, real store."""
from __future__ import annotations

import pytest

from same_nb.local.progress import make_progress
from same_nb.service import run_notebook
from same_nb.store import lineage
from same_nb.store.database import open_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(module_notebook_copy):
    nb = module_notebook_copy("cached_metrics")
    first = run_notebook(nb, progress=make_progress(quiet=True))
    second = run_notebook(nb, progress=make_progress(quiet=True))
    return nb, first, second


def test_second_run_is_fully_cached_and_keeps_the_metrics(two_runs):
    nb, first, second = two_runs
    assert first.ok and {n: s.status for n, s in first.states.items()} == {"train": "success", "report": "success"}
    assert {n: s.status for n, s in second.states.items()} == {"train": "cached", "report": "cached"}
    with open_store(notebook_dir=nb.parent) as store:
        logged = {run_id: [(m["step_name"], m["name"], m["value"]) for m in store.run_metrics([run_id])]
                  for run_id in (first.run_id, second.run_id)}
        shown = {s["step_name"]: {m["name"]: m["value"] for m in s["metrics"]}
                 for s in store.get_run(second.run_id)["steps"]}
        listed = {r["id"]: r["metrics"] for r in store.list_runs()}
        diff = lineage.compare(store, first.run_id, second.run_id)
    assert logged[second.run_id] == logged[first.run_id] == [
        ("train", "score", 0.6), ("train", "loss", 0.1 + 0.2), ("report", "reported", 1.2)]
    assert shown == {"train": {"score": 0.6, "loss": 0.1 + 0.2}, "report": {"reported": 1.2}}
    assert listed[second.run_id] == listed[first.run_id] == {
        "train.score": 0.6, "train.loss": 0.1 + 0.2, "report.reported": 1.2}
    assert diff["steps"]["train"]["metrics"] == {"score": [0.6, 0.6], "loss": [0.1 + 0.2] * 2}


def test_cached_steps_have_no_compute_time_of_their_own(two_runs):
    nb, first, second = two_runs
    with open_store(notebook_dir=nb.parent) as store:
        steps = {s["step_name"]: s for s in store.get_run(second.run_id)["steps"]}
    assert all(s["cache_hit"] and s["compute_s"] is None and s["kernel_wait_s"] is None for s in steps.values())
    assert all(s["duration_s"] == pytest.approx(second.states[n].seconds) for n, s in steps.items())
