"""same_nb.local.sweep with the service's run_sweep: a 3x2 sweep of real kernels and a real store. The
steps no swept parameter reaches execute exactly once; every run records them as cache hits of that
one step run; each grid point computes what a separate `-p` run computes; `runs --sweep` shows it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from same_nb.cli import main
from same_nb.frontend.sweep import parse_sweep_args
from same_nb.local.progress import make_progress
from same_nb.service import run_notebook, run_sweep
from same_nb.store.database import open_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swept(module_notebook_copy):
    nb = module_notebook_copy("sweep_grid")
    result = run_sweep(nb, parse_sweep_args(["scale=1,2,3", "seed=0,1"]), params=[("label", "fixed")], jobs=2,
                       progress_for=lambda index, label: make_progress(quiet=True))
    with open_store(notebook_dir=nb.parent) as store:
        runs = [store.get_run(r.run_id) for r in result.runs]
    return nb, result, runs


def steps_of(run: dict) -> dict[str, dict]:
    return {s["step_name"]: s for s in run["steps"]}


def test_every_grid_point_is_a_run_of_one_sweep(swept):
    nb, result, runs = swept
    assert result.ok and len(runs) == 6
    assert {r["sweep_id"] for r in runs} == {result.sweep_id}
    assert [(r["params"]["scale"], r["params"]["seed"], r["params"]["label"]) for r in runs] == [
        (1.0, 0, "fixed"), (1.0, 1, "fixed"), (2.0, 0, "fixed"), (2.0, 1, "fixed"), (3.0, 0, "fixed"),
        (3.0, 1, "fixed")]
    assert all(r["status"] == "success" for r in runs)


def test_shared_steps_execute_once_and_every_other_run_reuses_that_step_run(swept):
    nb, result, runs = swept
    for shared in ("load", "count"):
        records = [steps_of(r)[shared] for r in runs]
        executed = [s for s in records if s["status"] == "success"]
        assert len(executed) == 1 and executed[0]["run_id"] == runs[0]["id"]
        reused = [s for s in records if s is not executed[0]]
        assert all(s["status"] == "cached" and s["cache_hit"] for s in reused)
        assert all(f"step run {executed[0]['id']} of run {runs[0]['id']}" in s["reason"] for s in reused)
        assert {o["sha256"] for s in records for o in s["outputs"]} == {o["sha256"] for o in executed[0]["outputs"]}
        notebooks = sorted((nb.parent / ".same" / "runs").glob(f"*/steps/{shared}.ipynb"))
        assert notebooks == [Path(runs[0]["run_dir"]) / "steps" / f"{shared}.ipynb"]
    for swept_step in ("fit", "score"):
        assert all(steps_of(r)[swept_step]["status"] == "success" for r in runs)
        assert len(list((nb.parent / ".same" / "runs").glob(f"*/steps/{swept_step}.ipynb"))) == 6


def test_each_grid_point_equals_a_separate_run_with_p(swept, module_notebook_copy):
    nb, result, runs = swept
    alone = module_notebook_copy("sweep_grid")
    for index in (0, 5):
        point = result.values[index]
        single = run_notebook(alone, params=[("scale", str(point["scale"])), ("seed", str(point["seed"])),
                                             ("label", "fixed")], use_cache=False, lean=False,
                              progress=make_progress(quiet=True))
        with open_store(notebook_dir=alone.parent) as store:
            separate = store.get_run(single.run_id)
        for step in ("load", "count", "fit", "score"):
            mine = {o["name"]: o["sha256"] for o in steps_of(runs[index])[step]["outputs"]}
            theirs = {o["name"]: o["sha256"] for o in steps_of(separate)[step]["outputs"]}
            assert mine == theirs, step
        metrics = {m["name"]: m["value"] for m in steps_of(runs[index])["score"]["metrics"]}
        assert metrics == {m["name"]: m["value"] for m in steps_of(separate)["score"]["metrics"]}
        assert metrics["loss"] == point["scale"] * 2 + point["seed"]


def test_runs_sweep_shows_the_table_and_marks_the_best(swept, capsys):
    nb, result, runs = swept
    assert main(["runs", "--sweep", result.sweep_id, "--dir", str(nb.parent), "--best", "loss", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["params"] == ["scale", "seed"] and table["columns"] == ["accuracy", "loss"]
    # Run ids follow the order the points started in, which threads decide; the table is by id.
    assert [r["id"] for r in table["runs"]] == sorted(r["id"] for r in runs)
    assert table["best"] == {"run_id": runs[0]["id"], "metric": "loss", "direction": "min", "value": 2.0}
    assert main(["runs", "--sweep", result.sweep_id, "--dir", str(nb.parent), "--best", "loss", "--maximize"]) == 0
    out = capsys.readouterr().out
    assert f"★ best: run {runs[5]['id']}, loss 7 (highest is best; --minimize to flip)" in out
    starred = [line for line in out.splitlines() if "★" in line]
    assert len(starred) == 2 and re.search(rf"★\W+{runs[5]['id']}\b", starred[0])
    assert main(["runs", "--dir", str(nb.parent), "--json"]) == 0
    listed = {r["id"]: r["sweep_id"] for r in json.loads(capsys.readouterr().out)["runs"]}
    assert all(listed[r["id"]] == result.sweep_id for r in runs)


def test_a_second_sweep_is_fully_cached_but_a_new_sweep(swept, capsys):
    nb, result, runs = swept
    again = run_sweep(nb, parse_sweep_args(["scale=1,2,3", "seed=0,1"]), params=[("label", "fixed")], jobs=2,
                      progress_for=lambda index, label: make_progress(quiet=True))
    assert again.ok and again.sweep_id != result.sweep_id
    assert all(st.status == "cached" for r in again.runs for st in r.states.values())


def test_cli_sweep_prints_a_line_per_step_of_each_run_and_a_final_table(module_notebook_copy, capsys):
    nb = module_notebook_copy("sweep_grid")
    grid = nb.parent / "grid.yaml"
    grid.write_text("scale: [1, 2]\n")
    code = main(["run", str(nb), "--params-grid", str(grid), "--sweep", "seed=4", "-j", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 runs over scale (2) x seed (1); computed once and shared: load, count" in captured.err
    assert "point 2/2 (scale=2.0 seed=4) fit: success" in captured.out
    table = captured.out[captured.out.index("Sweep "):]
    assert "scale=1.0 seed=4  success" in table and "scale=2.0 seed=4  success" in table
    first_row = next(line for line in table.splitlines() if "scale=1.0" in line)
    assert all(step in first_row for step in ("load", "count", "fit", "score"))   # it computed the shared steps
    second_row = next(line for line in table.splitlines() if "scale=2.0" in line)
    assert "load" not in second_row and "count" not in second_row
    assert "succeeded" in table and "same-nb runs --sweep" in table


@pytest.mark.parametrize("argv, message", [
    (["--sweep", "seed=0,1", "--resume", "1"], "--resume continues one run"),
    (["--sweep", "nope=1"], "unknown parameter 'nope' (from --sweep nope); valid parameters: scale, seed, label"),
    (["--sweep", "seed=0", "-p", "seed", "1"], "both fixed with -p/--params and swept"),
    (["--sweep", "seed=a"], "parameter 'seed' expects int (default 0), got 'a' from --sweep seed"),
])
def test_cli_refuses_bad_sweeps_before_any_run(notebook_copy, capsys, argv, message):
    nb = notebook_copy("sweep_grid")
    assert main(["run", str(nb), *argv]) == 1
    assert message in capsys.readouterr().err
    assert not (nb.parent / ".same" / "runs").exists() or not any((nb.parent / ".same" / "runs").iterdir())


def test_a_swept_parameter_no_step_reads_is_warned_and_every_step_is_shared(notebook_copy, capsys):
    nb = notebook_copy("sweep_grid")
    assert main(["run", str(nb), "--sweep", "label=a,b", "-q"]) == 0
    captured = capsys.readouterr()
    assert "warning: no step reads parameter 'label': every grid point computes the same" in captured.err
    with open_store(notebook_dir=nb.parent) as store:
        [second, first] = store.list_runs(limit=2)
        steps = store.get_run(second["id"])["steps"]
    assert first["sweep_id"] == second["sweep_id"] and first["params"]["label"] == "a"
    assert {s["status"] for s in steps} == {"cached"}
