"""Run labels and notes, metrics in run listings, metrics of cache hits and the kernel/compute split,
on SQLite and a real PostgreSQL; and the 0002 → 0003 migration of a store that already holds runs."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import same_nb.store.database
from same_nb.errors import SameError
from same_nb.store.database import Store, open_store


def new_run(store: Store, tmp_path: Path) -> int:
    return store.create_run(notebook_path=tmp_path / "nb.ipynb", notebook_sha256="0" * 64,
                            pipeline_name="demo", params={}, target="local",
                            run_dir_root=tmp_path / "runs")


def finish(store: Store, step_run_id: int, **kwargs) -> None:
    store.start_step(step_run_id, cache_key="k", cache_info={}, reason=None, code_sha256=None)
    store.finish_step(step_run_id, status=kwargs.pop("status", "success"), inputs=[], outputs=[],
                      executed_notebook=None, log_path=None, **kwargs)


def test_label_run_changes_only_the_given_fields(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    assert store.get_run(run_id)["name"] is None and store.get_run(run_id)["note"] is None
    run = store.label_run(run_id, name="baseline")
    assert (run["id"], run["name"], run["note"]) == (run_id, "baseline", None)
    run = store.label_run(run_id, note="lr 0.1, before the feature fix")
    assert (run["name"], run["note"]) == ("baseline", "lr 0.1, before the feature fix")
    assert store.label_run(run_id)["name"] == "baseline"            # nothing given: nothing changes
    run = store.label_run(run_id, name=None)
    assert (run["name"], run["note"]) == (None, "lr 0.1, before the feature fix")
    assert store.list_runs()[0]["note"] == "lr 0.1, before the feature fix"
    store.label_run(run_id, name="é" * 255, note="n" * 10_000)      # the limits themselves are fine
    assert store.get_run(run_id)["name"] == "é" * 255


@pytest.mark.parametrize("call, message", [
    (lambda s, r: s.label_run(r + 1, name="x"), "no run"),
    (lambda s, r: s.label_run(0, name="x"), "no run 0"),
    (lambda s, r: s.label_run(r, name="x" * 256), "name is 256 characters long; the limit is 255"),
    (lambda s, r: s.label_run(r, note="x" * 10_001), "note is 10001 characters long; the limit is 10000"),
    (lambda s, r: s.label_run(r, name=3), "name must be text or null, not int"),
])
def test_label_run_refuses_bad_input(store: Store, tmp_path: Path, call, message: str):
    run_id = new_run(store, tmp_path)
    with pytest.raises(SameError, match=message):
        call(store, run_id)
    assert store.get_run(run_id)["name"] is None


def test_list_runs_carries_the_last_value_of_each_step_metric(store: Store, tmp_path: Path):
    first, second = new_run(store, tmp_path), new_run(store, tmp_path)
    ids = store.add_step_runs(first, ["train", "evaluate"])
    finish(store, ids["train"], metrics=[{"name": "loss", "value": 0.5},
                                         {"name": "loss", "value": 0.25}])
    finish(store, ids["evaluate"], metrics=[{"name": "accuracy", "value": 0.9}])
    listed = {r["id"]: r for r in store.list_runs()}
    assert listed[first]["metrics"] == {"train.loss": 0.25, "evaluate.accuracy": 0.9}
    assert listed[second]["metrics"] == {}


def test_cache_hit_copies_the_metrics_of_the_step_run_it_reused(store: Store, tmp_path: Path):
    first = new_run(store, tmp_path)
    computed = store.add_step_runs(first, ["train"])["train"]
    finish(store, computed, metrics=[{"name": "loss", "value": 0.5, "step": 1},
                                     {"name": "loss", "value": 0.25, "step": 2}])
    second = new_run(store, tmp_path)
    reused = store.add_step_runs(second, ["train"])["train"]
    finish(store, reused, status="cached", cache_hit=True, metrics_from=computed)
    got = [(m["run_id"], m["name"], m["value"], m["step"]) for m in store.run_metrics([second])]
    assert got == [(second, "loss", 0.5, 1), (second, "loss", 0.25, 2)]
    assert store.list_runs()[0]["metrics"] == {"train.loss": 0.25}
    assert [m["value"] for m in store.get_run(second)["steps"][0]["metrics"]] == [0.5, 0.25]
    assert len(store.run_metrics([first])) == 2                     # the original keeps its own


def test_kernel_wait_and_compute_are_recorded_beside_the_wall_time(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    ids = store.add_step_runs(run_id, ["load", "skipped"])
    finish(store, ids["load"], kernel_wait_s=6.8, compute_s=0.41)
    load, skipped = store.get_run(run_id)["steps"]
    assert (load["kernel_wait_s"], load["compute_s"]) == (6.8, 0.41)
    assert load["duration_s"] is not None
    assert (skipped["kernel_wait_s"], skipped["compute_s"]) == (None, None)


def alembic_config(conn: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location",
                           str(Path(same_nb.store.database.__file__).parent / "migrations"))
    config.attributes["connection"] = conn
    return config


def test_store_at_0002_with_runs_upgrades_to_0003(store_url: str, tmp_path: Path):
    (tmp_path / "db").mkdir(exist_ok=True)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(sa.text(
            "INSERT INTO runs (notebook_path, notebook_sha256, pipeline_name, params, target, "
            "status, created_at) VALUES ('/nb.ipynb', :sha, 'old', '{}', 'local', 'success', "
            "CURRENT_TIMESTAMP)"), {"sha": "0" * 64})
    with engine.connect() as conn:
        assert "name" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    engine.dispose()
    with open_store(store_url) as store:
        (old,) = store.list_runs()
        assert (old["pipeline_name"], old["name"], old["note"], old["metrics"]) == ("old", None, None, {})
        assert store.label_run(old["id"], name="kept")["name"] == "kept"
        run_id = new_run(store, tmp_path)
        step = store.add_step_runs(run_id, ["s"])["s"]
        finish(store, step, kernel_wait_s=1.0, compute_s=0.5)
        assert store.get_run(run_id)["steps"][0]["compute_s"] == 0.5
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:     # and back: the downgrade drops exactly what 0003 added
        command.downgrade(alembic_config(conn), "0002")     # through 0004's downgrade
        assert "note" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert "compute_s" not in {c["name"] for c in sa.inspect(conn).get_columns("step_runs")}
    engine.dispose()
