"""Which step run `same_nb.load_step` loads and what it takes from the record, on real stores (SQLite and
PostgreSQL): the latest failed run, cached steps followed to the run that computed them, and each
refusal naming what is wrong. Binding into a kernel is tested in tests/local/test_debug.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from same_nb.bundle.writer import _prologue
from same_nb.frontend.ir import Input, Replay, Step
from same_nb.store.stepload import StepLoadError, read_setup, resolve, split_prologue
from store.test_database import artifact, new_run


def _executed(tmp_path: Path, name: str, prologue: str) -> str:
    path = tmp_path / f"{name}.ipynb"
    path.write_text(json.dumps({"cells": [{"id": "same-nb-prologue", "cell_type": "code", "source": prologue}]}))
    return str(path)


def _step(store, step_run_id: int, key: str, *, status="success", inputs=(), outputs=(), params=None,
          cache_hit=False, executed=None, error=None) -> None:
    store.start_step(step_run_id, cache_key=key, cache_info={"code": key, "params": params or {}},
                     reason="reused from run 1" if cache_hit else "not cached", code_sha256="c" * 64)
    store.finish_step(step_run_id, status=status, inputs=list(inputs), outputs=list(outputs),
                      executed_notebook=executed, log_path=None, error=error, cache_hit=cache_hit)


def _pipeline_run(store, tmp_path: Path, *, failing: bool, cached_train: bool = False, notebook="nb.ipynb"):
    """load -> train (reads 'data' and the parameter 'alpha') -> report."""
    run = new_run(store, tmp_path, notebook, alpha=0.0 if failing else 1.0)
    ids = store.add_step_runs(run, ["load", "train", "report"])
    data = artifact(tmp_path / "art" / "ab", "data", b"rows")
    _step(store, ids["load"], "k-load", outputs=[data])
    executed = _executed(tmp_path, f"train-{run}", "import same_nb.runtime as _same_nb_runtime\n"
                         "import same_nb.runtime.state as _same_nb_state\n")
    inputs = [data, artifact(tmp_path / "art" / "cd", "other.csv", b"f", role="file")]
    if failing:
        _step(store, ids["train"], "k-train-0", status="failed", inputs=inputs, params={"alpha": 0.0},
              executed=executed, error={"ename": "ZeroDivisionError", "evalue": "division by zero"})
        store.mark_steps(run, ["report"], "skipped")
    else:
        _step(store, ids["train"], "k-train-1", inputs=inputs, params={"alpha": 1.0}, cache_hit=cached_train,
              executed=None if cached_train else executed,
              outputs=[artifact(tmp_path / "art" / "ef", "model", b"m")])
        _step(store, ids["report"], "k-report")
    store.finish_run(run, "failed" if failing else "success")
    return run


def test_the_latest_failed_run_is_loaded_with_inputs_producers_and_parameters(store, tmp_path):
    _pipeline_run(store, tmp_path, failing=True)
    failed = _pipeline_run(store, tmp_path, failing=True)
    _pipeline_run(store, tmp_path, failing=False)
    plan = resolve(store, "train", notebook=tmp_path / "nb.ipynb")
    assert (plan.run_id, plan.chosen, plan.status, plan.source_run_id) == (failed, "latest failed", "failed", failed)
    assert [(i["name"], i["producer"]) for i in plan.inputs] == [("data", "load")]     # the file is not a variable
    assert plan.params == {"alpha": 0.0}
    assert plan.error["ename"] == "ZeroDivisionError"
    assert plan.artifacts_root == str(tmp_path / "art")
    assert plan.setup.note == "" and plan.setup.restores == []


def test_a_cached_step_is_followed_to_the_run_that_computed_it(store, tmp_path):
    computed = _pipeline_run(store, tmp_path, failing=False)
    cached = _pipeline_run(store, tmp_path, failing=False, cached_train=True)
    plan = resolve(store, "train", run=cached)
    assert (plan.run_id, plan.source_run_id, plan.chosen) == (cached, computed, "given")
    assert plan.executed_notebook.endswith(f"train-{computed}.ipynb")
    assert [i["name"] for i in plan.inputs] == ["data"]


def test_refusals_name_what_is_wrong(store, tmp_path):
    failed = _pipeline_run(store, tmp_path, failing=True)
    other = _pipeline_run(store, tmp_path, failing=False, notebook="other.ipynb")
    cases = [
        (dict(step="nope", run=failed), "run 1 has no step 'nope'; its steps are 'load', 'train', 'report'"),
        (dict(step="x'); import os #", run=failed), "has no step \"x'); import os #\""),
        (dict(step="nope", notebook=tmp_path / "nb.ipynb"), "nb.ipynb has no step 'nope' in its latest run (1)"),
        (dict(step="train", run=99), "there is no run 99 in the run store"),
        (dict(step="train", run=other, notebook=tmp_path / "nb.ipynb"),
         f"run {other} is a run of {tmp_path / 'other.ipynb'}, not of {tmp_path / 'nb.ipynb'}"),
        (dict(step="report", run=failed), "step 'report' never started in run 1 (skipped), so it has no recorded "
                                          "inputs to load; steps that started: 'load', 'train'"),
        (dict(step="train", notebook=tmp_path / "other.ipynb"),
         "step 'train' has not failed in any recorded run of other.ipynb; give run=N"),
        (dict(step="train", notebook=tmp_path / "none.ipynb"), "no runs of"),
        (dict(step="train", run=0), "a run is a whole number from 1 (got 0)"),
        (dict(step="train", run=True), "a run is a whole number from 1 (got True)"),
        (dict(step="", run=1), "non-empty string"),
    ]
    for kwargs, words in cases:
        step = kwargs.pop("step")
        with pytest.raises(StepLoadError) as info:
            resolve(store, step, **kwargs)
        assert words in str(info.value), (step, kwargs, str(info.value))
        assert info.value._render_traceback_() == [f"StepLoadError: {info.value}"]   # IPython shows one line


def test_the_prologue_splits_as_the_template_writes_it():
    step = Step(name="train", inputs=[Input("_same_nb_rng_numpy", "variable", "prep"), Input("df", "variable", "prep")],
                replay=[Replay(channel="pandas.options", statement="pd.set_option('display.max_rows', 7)", step="prep",
                               imports=["import pandas as pd"], cell=2, line=3),
                        Replay(channel="os.environ", statement="os.environ['K'] = str(len(df))", step="prep",
                               imports=["import os"], cell=2, line=4, after_inputs=True)],
                state_writes=["numpy.random"])
    setup = split_prologue(_prologue(step))
    assert setup.before_inputs.splitlines() == ["# set in step prep (cell 2, line 3)", "import pandas as pd",
                                                "pd.set_option('display.max_rows', 7)"]
    assert setup.after_inputs.splitlines() == ["# set in step prep (cell 2, line 4)", "import os",
                                               "os.environ['K'] = str(len(df))"]
    assert setup.restores == [("numpy.random", "_same_nb_rng_numpy")] and setup.note == ""


def test_a_missing_or_foreign_prologue_is_said_not_guessed(tmp_path):
    assert "no executed notebook" in read_setup(None).note
    assert "cannot read" in read_setup(str(tmp_path / "gone.ipynb")).note
    assert "not one this version" in read_setup(_executed(tmp_path, "odd", "print('hi')\n")).note


def test_an_interrupted_step_loads_the_inputs_its_spec_named(store, tmp_path):
    """Edges are written when a step ends; one stopped mid-run still has the spec the runner wrote."""
    run = new_run(store, tmp_path, alpha=2.0)
    ids = store.add_step_runs(run, ["load", "train"])
    data = artifact(tmp_path / "art" / "ab", "data", b"rows")
    _step(store, ids["load"], "k-load", outputs=[data])
    store.start_step(ids["train"], cache_key="k", cache_info={"params": {"alpha": 2.0}}, reason="", code_sha256=None)
    store.mark_steps(run, ["train"], "interrupted")
    spec = tmp_path / "runs" / str(run) / "steps" / "train" / "spec.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps({"step": "train", "inputs": {"data": {k: data[k] for k in ("sha256", "kind", "type",
                                                                                          "size", "location")}}}))
    plan = resolve(store, "train", run=run)
    assert plan.status == "interrupted" and plan.params == {"alpha": 2.0}
    assert [(i["name"], i["sha256"], i["producer"]) for i in plan.inputs] == [("data", data["sha256"], "load")]
