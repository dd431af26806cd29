"""same_nb.store.sweeps: a sweep's runs as one table (swept values, last metric values, status) and the
best run by a metric, on SQLite and a real PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.store.database import Store
from same_nb.store.sweeps import default_direction, sweep_table


def grid_run(store: Store, tmp_path: Path, sweep: str | None, params: dict, metrics: list[tuple[str, str, float]],
             status: str = "success") -> int:
    run_id = store.create_run(notebook_path=tmp_path / "nb.ipynb", notebook_sha256="0" * 64, pipeline_name="demo",
                              params={"label": "x", **params}, target="local", run_dir_root=tmp_path / "runs",
                              sweep_id=sweep)
    steps = sorted({step for step, _, _ in metrics}) or ["train"]
    ids = store.add_step_runs(run_id, steps)
    for step in steps:
        store.start_step(ids[step], cache_key="k", cache_info={}, reason=None, code_sha256=None)
        store.finish_step(ids[step], status=status, inputs=[], outputs=[], executed_notebook=None, log_path=None,
                          metrics=[{"name": n, "value": v} for s, n, v in metrics if s == step])
    store.finish_run(run_id, status)
    return run_id


@pytest.fixture
def sweep(store: Store, tmp_path: Path):
    runs = [grid_run(store, tmp_path, "sw-1", {"C": 0.1, "seed": 0}, [("train", "loss", 0.9), ("train", "loss", 0.5),
                                                                       ("evaluate", "accuracy", 0.7)]),
            grid_run(store, tmp_path, "sw-1", {"C": 1.0, "seed": 0}, [("train", "loss", 0.2),
                                                                       ("evaluate", "accuracy", 0.9)]),
            grid_run(store, tmp_path, "sw-1", {"C": 10.0, "seed": 0}, [("train", "loss", 0.1),
                                                                        ("evaluate", "accuracy", 0.95)],
                     status="failed")]
    grid_run(store, tmp_path, "sw-2", {"C": 0.1, "seed": 1}, [("train", "loss", 0.0)])
    grid_run(store, tmp_path, None, {"C": 0.1, "seed": 0}, [("train", "loss", 0.0)])
    return runs


def test_a_sweep_is_its_runs_with_swept_values_and_last_metrics(store: Store, sweep):
    table = sweep_table(store, "sw-1")
    assert [r["id"] for r in table["runs"]] == sweep
    assert table["params"] == ["C"]                 # seed and label are the same in every run
    assert [r["values"] for r in table["runs"]] == [{"C": 0.1}, {"C": 1.0}, {"C": 10.0}]
    assert table["columns"] == ["accuracy", "loss"]
    assert [r["metrics"] for r in table["runs"]] == [{"loss": 0.5, "accuracy": 0.7}, {"loss": 0.2, "accuracy": 0.9},
                                                     {"loss": 0.1, "accuracy": 0.95}]
    assert [r["status"] for r in table["runs"]] == ["success", "success", "failed"]
    assert table["best"] is None


def test_best_run_follows_the_direction_and_skips_failed_runs(store: Store, sweep):
    assert sweep_table(store, "sw-1", best="loss")["best"] == {"run_id": sweep[1], "metric": "loss",
                                                                "direction": "min", "value": 0.2}
    assert sweep_table(store, "sw-1", best="accuracy")["best"]["run_id"] == sweep[1]
    assert sweep_table(store, "sw-1", best="loss", direction="max")["best"]["run_id"] == sweep[0]
    assert sweep_table(store, "sw-1", best="accuracy", direction="min")["best"]["run_id"] == sweep[0]


@pytest.mark.parametrize("metric, direction", [("loss", "min"), ("val_rmse", "min"), ("error_rate", "min"),
                                               ("train_time_s", "min"), ("accuracy", "max"), ("f1", "max"),
                                               ("r2", "max")])
def test_default_direction_comes_from_the_metric_name(metric, direction):
    assert default_direction(metric) == direction


def test_unknown_sweep_or_metric_is_named(store: Store, sweep):
    with pytest.raises(SameError, match="there is no sweep 'nope' in this store"):
        sweep_table(store, "nope")
    with pytest.raises(SameError, match=r"no run of sweep 'sw-1' logged a metric 'auc'; its metrics: accuracy, loss"):
        sweep_table(store, "sw-1", best="auc")
    with pytest.raises(SameError, match="direction must be min or max"):
        sweep_table(store, "sw-1", best="loss", direction="up")


def test_runs_listing_carries_the_sweep_id(store: Store, sweep):
    listed = {r["id"]: r["sweep_id"] for r in store.list_runs()}
    assert [listed[i] for i in sweep] == ["sw-1"] * 3
    assert sorted(v for v in listed.values() if v) == ["sw-1"] * 3 + ["sw-2"]
