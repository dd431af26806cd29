"""Locks that are complete: examples/quickstart run locally, then locked. ``load_iris(as_frame=True)``
needs pandas and no cell imports it; DataFrames cross steps as Arrow files. Real kernels, real uv."""
from __future__ import annotations

import json
import shutil
from importlib import metadata

import pytest

from same_nb import cli
from same_nb.report import render_lock
from same_nb.service import lock_notebook, run_notebook
from same_nb.store.observed import load_observed

from conftest import ROOT

pytestmark = pytest.mark.slow

NEVER_RAN = ("step '{}' never ran locally: its lock has only its imports; run `same-nb run {}` first so "
             "the lock includes what it loads")


def pin(dist: str) -> str:
    return f"{dist}=={metadata.version(dist)}"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        folder = tmp_path_factory.mktemp("quickstart")
        nb = folder / "quickstart.ipynb"
        shutil.copyfile(ROOT / "examples" / "quickstart" / "quickstart.ipynb", nb)
        never = tmp_path_factory.mktemp("never") / "quickstart.ipynb"
        shutil.copyfile(nb, never)
        before = lock_notebook(nb, folder / "before")
        result = run_notebook(nb, jobs=2)
        assert result.ok, {n: s.error for n, s in result.states.items()}
        yield {"nb": nb, "never": never, "before": before, "run": result,
               "after": lock_notebook(nb, folder / "after")}


def test_the_run_recorded_what_each_step_loaded_and_passed_on(quickstart):
    observed = load_observed(quickstart["nb"])
    assert sorted(observed) == ["evaluate", "load", "split", "train"]
    assert {o["run"] for o in observed.values()} == {quickstart["run"].run_id}
    assert {"pandas", "pyarrow", "sklearn"} <= set(observed["load"]["modules"])
    assert not {"ipykernel", "IPython", "zmq", "tornado", "traitlets", "same_nb", "json"} \
        & {m for o in observed.values() for m in o["modules"]}
    assert observed["load"]["outputs"]["df"] == {"kind": "pandas-dataframe", "type": "pandas.DataFrame",
                                                 "needs": ["pandas", "pyarrow"]}
    assert observed["train"]["outputs"]["model"]["needs"] == ["cloudpickle", "sklearn"]


def test_step_locks_hold_what_the_steps_loaded_and_passed(quickstart):
    after = quickstart["after"]
    for step in ("load", "train", "evaluate"):
        lock = after.steps[step]
        assert {pin("pandas"), pin("pyarrow")} <= set(lock.pins), step
        assert "loaded" in lock.sources["pandas"]
        assert {"serializer", "input"} & set(lock.sources["pyarrow"])
        text = lock.lock_path.read_text()
        assert pin("pandas") in text and pin("pyarrow") in text
    assert "serializer" in after.steps["load"].sources["pyarrow"]          # df leaves load as Arrow
    assert "input" in after.steps["train"].sources["pyarrow"]              # y_train arrives as Arrow
    assert after.steps["evaluate"].sources["scikit-learn"] == ["loaded", "input"]   # the model it is given
    assert not any("never ran" in w for w in after.warnings)
    # evaluate imports same_nb (log_metric): it ships with the runtime, never a pin.
    assert not any(line.lower().startswith(("same-nb", "same_nb")) for s in after.steps.values()
                   for line in s.pins + s.unpinned)
    before = quickstart["before"]
    assert before.steps["train"].pins == [pin("scikit-learn")]
    assert len(after.steps["train"].pins) > len(before.steps["train"].pins)


def test_a_notebook_that_never_ran_locally_is_told_to_run_first(quickstart):
    never = lock_notebook(quickstart["never"], quickstart["never"].parent / "bundle")
    for step in ("load", "split", "train", "evaluate"):
        assert f"{step}: {NEVER_RAN.format(step, quickstart['never'])}" in never.warnings
    assert never.steps["load"].pins == [pin("scikit-learn")]
    assert sum("never ran locally" in w for w in quickstart["before"].warnings) == 4   # so did it before its run


def test_the_lock_command_shows_where_each_pin_came_from(quickstart, capsys):
    text = render_lock(quickstart["after"])
    assert f"{pin('pandas')}" in text and "(loaded" in text and "Sources: import = a cell imports it" in text
    train = text.split("  train:")[1].split("  evaluate:")[0]
    assert any(line.strip().startswith(pin("pyarrow")) and "input" in line for line in train.splitlines())
    nb = quickstart["nb"]
    assert cli.main(["lock", str(nb), "-o", str(nb.parent / "cli"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "loaded" in data["steps"]["train"]["sources"]["pandas"]


def test_verify_installs_the_complete_locks_and_imports_same_nb_from_the_runtime_copy(quickstart):
    from same_nb.service import verify_notebook

    nb = quickstart["nb"]
    _, report = verify_notebook(nb, nb.parent / "verify")
    assert report.ok, report.render()
    evaluate = next(s for s in report.steps if s.step == "evaluate")
    assert {"same_nb", "pandas", "pyarrow", "sklearn"} <= set(evaluate.imported)
    assert any("same_nb: ships with the runtime" in n for n in evaluate.notes)


def test_an_isolated_run_gets_pandas_from_the_lock_and_same_nb_from_the_runtime(quickstart):
    result = run_notebook(quickstart["nb"], isolated=True, use_cache=False, jobs=2)
    assert result.ok, {n: s.error for n, s in result.states.items()}
    assert [m["name"] for m in result.states["evaluate"].metrics] == ["accuracy"]
