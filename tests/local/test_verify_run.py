"""`same-nb verify` runs each step in the clean venv of its lock, fed the inputs and parameters of its last
successful local run, and compares the outputs' sha256 with that run's. Real kernels, real uv venvs,
real installs from the package index."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from same_nb.service import run_notebook, verify_notebook

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)


def test_quickstart_steps_run_in_their_clean_venvs_and_reproduce_the_last_run(tmp_path):
    nb = tmp_path / "quickstart.ipynb"
    shutil.copy(ROOT / "examples" / "quickstart" / "quickstart.ipynb", nb)
    ran = run_notebook(nb)
    assert ran.ok, {n: s.error for n, s in ran.states.items()}
    lines: list[str] = []
    _, report = verify_notebook(nb, progress=lines.append)
    assert report.ok, report.render()
    assert [s.status for s in report.steps] == ["ok"] * 4, report.render()
    envs = tmp_path / ".same" / "envs"
    for step in report.steps:
        assert step.run.run_id == ran.run_id and not step.run.differs and not step.run.failures
        assert step.run.python.startswith(str(envs)) and step.run.python.endswith("-kernel/bin/python")
    for name in ("load", "split", "train", "evaluate"):
        assert f"verify run {name}: started (inputs of run {ran.run_id})" in lines
        assert any(line.startswith(f"verify run {name}: ok in ") for line in lines)
    # Outputs of the check stay in its scratch store, never in the notebook's.
    assert (tmp_path / ".same" / "verify" / "split" / "result.json").is_file()
    data = report.to_dict()
    assert [s["status"] for s in data["steps"]] == ["ok"] * 4 and all(s["seconds"] > 0 for s in data["steps"])
    assert "ran in" in report.render() and report.render().splitlines()[0].endswith("OK")


def test_a_module_only_this_environment_has_fails_the_step_with_its_cell_and_line(write_notebook, tmp_path,
                                                                                   monkeypatch):
    # The helper loads a module at run time that only PYTHONPATH provides here: no lock can have it.
    extra = tmp_path / "elsewhere"
    extra.mkdir()
    (extra / "same_nb_verify_extra_q7.py").write_text("VALUE = 41\n")
    (tmp_path / "verify_helper.py").write_text(
        "import importlib\n\n\ndef load():\n    return importlib.import_module('same_nb_verify_extra_q7').VALUE\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(extra), os.environ.get("PYTHONPATH")])))
    nb = write_notebook([
        (["step:load"], "import verify_helper\n\nvalue = verify_helper.load()"),
        (["step:use"], "result = value + 1"),
    ])
    ran = run_notebook(nb)
    assert ran.ok, {n: s.error for n, s in ran.states.items()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(extra)])}
    done = subprocess.run([sys.executable, "-m", "same_nb.cli", "verify", str(nb), "--json"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stderr
    steps = {s["step"]: s for s in json.loads(done.stdout)["steps"]}
    load = steps["load"]
    assert load["status"] == "failed" and load["run"]["status"] == "failed"
    [failure] = load["run"]["failures"]
    assert failure["ename"] == "ModuleNotFoundError" and "same_nb_verify_extra_q7" in failure["evalue"]
    assert failure["cell"] == 1 and failure["line"] == 3
    assert steps["use"]["status"] == "ok"            # its input came from the local run, not from `load`
    assert "verify run load: FAILED in cell 1, line 3" in done.stderr
    text = subprocess.run([sys.executable, "-m", "same_nb.cli", "verify", str(nb)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert text.returncode == 1
    assert "FAIL load" in text.stdout and "run: ModuleNotFoundError: No module named 'same_nb_verify_extra_q7' " \
        "(cell 1, line 3)" in text.stdout


def test_steps_that_never_ran_locally_are_reported_not_run_with_the_hint(write_notebook, tmp_path):
    nb = write_notebook([(["step:make"], "import json\ndata = json.dumps([1])"), (["step:use"], "n = len(data)")])
    lines: list[str] = []
    _, report = verify_notebook(nb, progress=lines.append)
    assert [s.status for s in report.steps] == ["not-run", "not-run"]
    assert report.ok                                  # not a failure of the lock
    hint = "no successful local run to take inputs from; run `same-nb run nb.ipynb` first"
    assert all(s.run.notes == [hint] for s in report.steps)
    text = report.render()
    assert f"run: not run: {hint}" in text and "(2 not run)" in text and "--   make" in text
    assert f"verify run make: not run ({hint})" in lines
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "same_nb.cli", "verify", str(nb)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not a failure of the lock" in done.stdout


def test_a_failed_last_run_is_not_run_and_imports_only_skips_the_runs(write_notebook, tmp_path):
    nb = write_notebook([(["step:make"], "data = [1, 2]"), (["step:boom"], "raise ValueError(len(data))")])
    ran = run_notebook(nb)
    assert not ran.ok
    _, report = verify_notebook(nb)
    by_step = {s.step: s for s in report.steps}
    assert by_step["make"].status == "ok" and by_step["boom"].status == "not-run"
    _, imports_only = verify_notebook(nb, run=False)
    assert all(s.run is None and s.status == "ok" for s in imports_only.steps)


def test_an_output_that_differs_from_the_last_run_is_reported_per_variable(write_notebook):
    nb = write_notebook([(["step:make"], "import time\nstamp = time.time()\nconstant = 3"),
                         (["step:use"], "later = stamp + constant")])
    ran = run_notebook(nb)
    assert ran.ok, {n: s.error for n, s in ran.states.items()}
    _, report = verify_notebook(nb)
    make = next(s for s in report.steps if s.step == "make")
    assert make.status == "differs" and not report.ok
    assert list(make.run.differs) == ["stamp"] and make.run.differs["stamp"]["run"] == ran.run_id
    assert f"run: output stamp differs from run {ran.run_id}" in report.render()
    assert next(s for s in report.steps if s.step == "use").status == "ok"
