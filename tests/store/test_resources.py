"""A step run's resource columns on real stores (SQLite, PostgreSQL and the lean sqlite3 path), and
how compare shows them and flags a step whose peak memory or time more than doubled."""
from __future__ import annotations

from pathlib import Path

from same_nb.store import lineage
from same_nb.store.database import Store, open_store
from same_nb.store.lean import open_lean_store
from same_nb.store.resources import growth_flags, step_resources
from tests.store.test_database import artifact, new_run, run_step

MB = 1_000_000


def test_finish_step_records_measured_figures_and_artifact_bytes(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    ids = store.add_step_runs(run_id, ["load", "train"])
    data = artifact(tmp_path / "a", "data", b"x" * 1000)
    same_data = {**data, "name": "alias"}                  # one artifact under two names counts once
    model = artifact(tmp_path / "a", "model", b"m" * 300)
    run_step(store, ids["load"], "k1", outputs=[data], resources={"peak_rss_bytes": 5 * MB, "cpu_s": 0.25})
    run_step(store, ids["train"], "k2", inputs=(data, same_data), outputs=[model],
             resources={"peak_rss_bytes": 120 * MB, "cpu_s": 3.5})
    steps = {s["step_name"]: s for s in store.get_run(run_id)["steps"]}
    assert {k: steps["train"][k] for k in ("peak_rss_bytes", "cpu_s", "bytes_in", "bytes_out")} == \
        {"peak_rss_bytes": 120 * MB, "cpu_s": 3.5, "bytes_in": 1000, "bytes_out": 300}
    assert (steps["load"]["bytes_in"], steps["load"]["bytes_out"]) == (0, 1000)


def test_unmeasured_and_cached_steps_record_none_not_a_guess(store: Store, tmp_path: Path):
    run_id = new_run(store, tmp_path)
    ids = store.add_step_runs(run_id, ["failed", "cached"])
    data = artifact(tmp_path / "a", "data", b"x" * 64)
    run_step(store, ids["failed"], "k1", inputs=(data,), outputs=[], status="failed", resources={})
    run_step(store, ids["cached"], "k2", inputs=(data,), outputs=[data], status="cached", cache_hit=True,
             resources={"peak_rss_bytes": 1, "cpu_s": 1.0})     # a cache hit ran nothing
    steps = {s["step_name"]: s for s in store.get_run(run_id)["steps"]}
    assert (steps["failed"]["peak_rss_bytes"], steps["failed"]["cpu_s"], steps["failed"]["bytes_in"]) == \
        (None, None, 64)
    assert {k: steps["cached"][k] for k in ("peak_rss_bytes", "cpu_s", "bytes_in", "bytes_out")} == \
        {"peak_rss_bytes": None, "cpu_s": None, "bytes_in": None, "bytes_out": 64}


def test_lean_store_writes_the_same_columns(tmp_path: Path):
    folder = tmp_path / "nb"
    (folder / ".same").mkdir(parents=True)
    url = f"sqlite:///{folder / '.same' / 'same.db'}"
    with open_store(url):
        pass                                               # created at the schema's head, in WAL mode
    lean = open_lean_store(folder)
    assert lean is not None
    data = artifact(tmp_path / "a", "data", b"y" * 2048)
    try:
        run_id = new_run(lean, folder)
        step = lean.add_step_runs(run_id, ["load"])["load"]
        run_step(lean, step, "k", outputs=[data], status="cached", cache_hit=True)
        lean.finish_run(run_id, "success")
    finally:
        lean.close()
    with open_store(url) as store:
        recorded = store.get_run(run_id)["steps"][0]
    assert (recorded["bytes_out"], recorded["bytes_in"], recorded["peak_rss_bytes"]) == (2048, None, None)


def test_step_resources_refuses_figures_that_are_not_measurements():
    figures = step_resources(status="success", inputs=[], outputs=[],
                             measured={"peak_rss_bytes": -1, "cpu_s": float("nan")})
    assert figures == {"peak_rss_bytes": None, "cpu_s": None, "bytes_in": 0, "bytes_out": 0}


def _steps(**figures) -> dict:
    return {name: {"resources": values} for name, values in figures.items()}


def test_growth_is_flagged_above_2x_and_above_the_noise_floor():
    steps = _steps(
        train={"peak_rss_bytes": [120 * MB, 290 * MB], "time_s": [4.0, 5.0]},
        tiny={"peak_rss_bytes": [2 * MB, 9 * MB], "time_s": [0.1, 0.4]},       # 4x, but within the noise
        steady={"peak_rss_bytes": [200 * MB, 220 * MB], "time_s": [1.0, 1.9]},   # grew, less than 2x
        slow={"peak_rss_bytes": [None, 50 * MB], "time_s": [1.0, 3.0]},         # unknown memory first
    )
    flags = growth_flags([3, 7], steps)
    assert [(f["step"], f["what"], f["ratio"]) for f in flags] == [("train", "peak memory", 2.42),
                                                                   ("slow", "time", 3.0)]
    diff = {"runs": [3, 7], "notebook_sha256": ["a", "a"], "identical": True, "params": {}, "packages": {},
            "flags": flags, "steps": {name: {"status": ["success"] * 2, "code": {}, "inputs": {}, "outputs": {},
                                             "metrics": {}, **s} for name, s in steps.items()}}
    text = lineage.render_compare(diff)
    assert "grew more than 2x:\n  train: peak memory 2.42x (120 MB → 290 MB)\n  slow: time 3x (1 s → 3 s)" in text
    assert "tiny:" not in text.split("step ")[0]
    assert "step steady:\n  resources: peak memory 200 MB → 220 MB, time 1 s → 1.9 s" in text


def test_more_runs_are_flagged_against_the_first():
    flags = growth_flags([1, 2, 3], _steps(train={"peak_rss_bytes": [100 * MB, 150 * MB, 250 * MB]}))
    assert [(f["runs"], f["ratio"]) for f in flags] == [([1, 3], 2.5)]
    diff = {"runs": [1, 2, 3], "notebook_sha256": ["a"] * 3, "identical": True, "params": {}, "packages": {},
            "flags": flags, "steps": {}}
    assert "train: peak memory 2.5x from run 1 to run 3 (100 MB → 250 MB)" in lineage.render_compare(diff)
