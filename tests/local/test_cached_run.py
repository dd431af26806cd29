"""A fully cached rerun is recorded through the lean sqlite3 store (no SQLAlchemy) with the same rows
and the same `same-nb show --json` as the normal path; anything not fully cached takes the normal path
and leaves no trace of the lean attempt. Real kernels, real store, real notebooks."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import same_nb.store.database as database
from same_nb.cli import main as cli_main
from same_nb.local.progress import make_progress
from same_nb.service import run_notebook
from same_nb.store.lean import open_lean_store

from postgres_server import fresh_database

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# What differs between two recordings of the same cached run: ids, clocks, the process, the run it reused.
VOLATILE = {"id", "run_id", "step_run_id", "created_at", "started_at", "finished_at", "duration_s", "pid",
            "pid_started", "run_dir", "logged_at_", "seconds"}


def quiet_run(nb: Path, **kw):
    return run_notebook(nb, progress=make_progress(quiet=True), **kw)


class OpenStoreSpy:
    """Counts how often the normal (SQLAlchemy) store is opened."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = database.open_store

        def spy(*args, **kw):
            self.calls += 1
            return real(*args, **kw)

        monkeypatch.setattr(database, "open_store", spy)


def rows(db: Path, run_id: int) -> dict:
    """The raw rows a run wrote (values as stored, with SQLite's type of each), ids and clocks left out."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row

    def plain(row) -> dict:
        return {k: (row[k], type(row[k]).__name__) for k in row.keys() if k not in VOLATILE}

    run = plain(con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
    steps = {r["step_name"]: plain(r) | {"reason": re.sub(r"\d+", "N", r["reason"] or "")}
             for r in con.execute("SELECT * FROM step_runs WHERE run_id = ?", (run_id,))}
    clocks = con.execute("SELECT started_at, finished_at FROM step_runs WHERE run_id = ?", (run_id,)).fetchall()
    edges = sorted(tuple(r) for r in con.execute(
        "SELECT s.step_name, e.direction, e.name, e.artifact_sha256, e.role FROM step_run_artifacts e "
        "JOIN step_runs s ON s.id = e.step_run_id WHERE s.run_id = ?", (run_id,)))
    metrics = [tuple(r) for r in con.execute(
        "SELECT s.step_name, m.name, m.value, m.step, m.logged_at FROM metrics m JOIN step_runs s "
        "ON s.id = m.step_run_id WHERE s.run_id = ? ORDER BY m.id", (run_id,))]
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("artifacts", "notebook_snapshots")}
    con.close()
    return {"run": run, "steps": steps, "clock_shapes": sorted({(len(a), len(b)) for a, b in clocks}),
            "edges": edges, "metrics": metrics, "shared_tables": counts}


def shown(nb: Path, run_id: int, capsys) -> dict:
    capsys.readouterr()
    assert cli_main(["show", str(run_id), "--json", "--notebook", str(nb)]) == 0
    return _scrub(json.loads(capsys.readouterr().out))


def _scrub(value):
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in VOLATILE and not k.endswith("_at")}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"(run |runs/)\d+", r"\1N", value)
    return value


@pytest.fixture(scope="module")
def three_runs(module_notebook_copy):
    """Run 1 executes; run 2 is recorded by the lean store, run 3 by the normal one (both fully cached)."""
    nb = module_notebook_copy("cached_metrics")
    cold = quiet_run(nb)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(database, "open_store", lambda *a, **k: pytest.fail("the lean path opened SQLAlchemy's store"))
        lean = quiet_run(nb)
    normal = quiet_run(nb, lean=False)
    return nb, cold, lean, normal


def test_lean_and_normal_recordings_of_a_cached_run_are_the_same(three_runs, capsys):
    nb, cold, lean, normal = three_runs
    assert cold.ok and lean.ok and normal.ok
    assert [cold.run_id, lean.run_id, normal.run_id] == [1, 2, 3]
    assert {s.status for s in lean.states.values()} == {s.status for s in normal.states.values()} == {"cached"}
    db = nb.parent / ".same" / "same.db"
    lean_rows, normal_rows = rows(db, lean.run_id), rows(db, normal.run_id)
    assert lean_rows == normal_rows
    assert lean_rows["run"]["status"] == ("success", "str")
    assert lean_rows["steps"]["train"]["cache_hit"] == (1, "int")
    assert lean_rows["steps"]["train"]["error"] == ("null", "str")          # SQLAlchemy's JSON None
    assert [m[1:3] for m in lean_rows["metrics"]] == [("score", 0.6), ("loss", 0.1 + 0.2), ("reported", 1.2)]
    assert shown(nb, lean.run_id, capsys) == shown(nb, normal.run_id, capsys)


def test_a_fully_cached_cli_run_never_imports_sqlalchemy(three_runs):
    nb = three_runs[0]
    code = ("import sys; from same_nb.cli import main; rc = main(['run', sys.argv[1], '-q']); "
            "print('sqlalchemy' in sys.modules, 'nbformat' in sys.modules, 'jupyter_client' in sys.modules); "
            "sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SAME_NB_DB", None)
    done = subprocess.run([sys.executable, "-c", code, str(nb)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False False False"
    assert "cached" in done.stdout


@pytest.mark.parametrize("change", ["cell", "no-cache", "artifact", "param"])
def test_anything_not_fully_cached_takes_the_normal_path(change, notebook_copy, monkeypatch):
    nb = notebook_copy("cached_metrics")
    assert quiet_run(nb).ok
    kw = {}
    if change == "cell":
        data = json.loads(nb.read_text())
        data["cells"][2]["source"] = 'same_nb.log_metric("reported", score * 3)\nprint(score)'
        nb.write_text(json.dumps(data))
        expected = {"train": "cached", "report": "success"}
    elif change == "no-cache":
        kw["use_cache"] = False
        expected = {"train": "success", "report": "success"}
    elif change == "artifact":
        # train's output `score` is gone from disk: train runs again, report reuses its result
        for path in (nb.parent / ".same" / "artifacts").rglob("*"):
            if path.is_file():
                path.unlink()
        expected = {"train": "success", "report": "cached"}
    else:
        kw["params"] = [("C", "2.0")]
        expected = {"train": "success", "report": "success"}
    spy = OpenStoreSpy(monkeypatch)
    result = quiet_run(nb, **kw)
    assert result.ok and {n: s.status for n, s in result.states.items()} == expected
    assert spy.calls == 1
    con = sqlite3.connect(nb.parent / ".same" / "same.db")
    # the lean attempt, rolled back, left no run behind: run 2 is the normal path's
    assert con.execute("SELECT id, status FROM runs ORDER BY id").fetchall() == [(1, "success"), (2, "success")]
    assert con.execute("SELECT count(*) FROM step_runs").fetchone()[0] == 4
    con.close()


def test_postgresql_store_takes_the_normal_path(notebook_copy, monkeypatch):
    url, drop = fresh_database()
    try:
        monkeypatch.setenv("SAME_NB_DB", url)
        nb = notebook_copy("cached_metrics")
        first = quiet_run(nb)
        assert open_lean_store(nb.parent) is None
        spy = OpenStoreSpy(monkeypatch)
        second = quiet_run(nb)
        assert spy.calls == 1
        assert {s.status for s in second.states.values()} == {"cached"}
        with database.open_store(url) as store:
            run = store.get_run(second.run_id)
        assert run["status"] == "success" and first.run_id < second.run_id
        assert sorted((s["step_name"], s["cache_hit"]) for s in run["steps"]) == [("report", True), ("train", True)]
        assert {m["name"]: m["value"] for s in run["steps"] for m in s["metrics"]} == {
            "score": 0.6, "loss": 0.1 + 0.2, "reported": 1.2}
    finally:
        drop()
