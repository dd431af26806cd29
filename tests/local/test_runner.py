"""The local runner end to end, through the service layer: real kernels, real files, real store.
Parameter checks come first: they only compile."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from same_nb.errors import SameError
from same_nb.local.progress import make_progress
from same_nb.runtime import ArtifactStore, load_value
from same_nb.service import resolve_params, run_notebook
from same_nb.store.database import open_store


def run(notebook: Path, **kwargs):
    return run_notebook(notebook, progress=make_progress(quiet=True), **kwargs)


def snapshot(result, step: str) -> dict:
    """The variables ``step`` ended with (needs ``snapshot=True``)."""
    data = json.loads((result.run_dir / "steps" / step / "result.json").read_text())
    store = ArtifactStore(result.run_dir.parent.parent / "artifacts")
    return {name: load_value(rec, store) for name, rec in data["snapshot"].items()}


def stored_run(result) -> dict:
    with open_store(notebook_dir=result.run_dir.parent.parent.parent) as store:
        return store.get_run(result.run_id)


def statuses(result) -> dict[str, str]:
    return {name: st.status for name, st in result.states.items()}


def artifact_files(notebook: Path) -> list[Path]:
    """The content-addressed files: not the data profiles beside them (``<sha>.profile.json``)."""
    root = notebook.parent / ".same" / "artifacts"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"
                  and not p.name.endswith(".profile.json"))


# -- parameters ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def typed(module_notebook_copy):
    """tags_parameters: alpha=0.5, name='run', epochs=3, flags=[1, 2], opts={'a': 1}, nothing=None,
    verbose=False."""
    from same_nb.local.prepared import prepare

    nb = module_notebook_copy("tags_parameters")
    return nb, prepare(nb).pipeline


@pytest.mark.parametrize("name, raw, value", [
    ("alpha", "2", 2.0), ("alpha", "0.25", 0.25), ("alpha", "1e3", 1000.0), ("epochs", "7", 7),
    ("verbose", "true", True), ("verbose", "no", False), ("name", "007", "007"),
    ("flags", "[3, 4]", [3, 4]), ("opts", '{"b": 2}', {"b": 2}), ("nothing", "5", 5),
])
def test_cli_values_are_converted_to_the_defaults_type(typed, name, raw, value):
    _, pipeline = typed
    values = resolve_params(pipeline, {}, [(name, raw)])
    assert values[name] == value and type(values[name]) is type(value)
    assert {k: v for k, v in values.items() if k != name} == {
        p.name: p.default for p in pipeline.parameters if p.name != name}


@pytest.mark.parametrize("name, raw, expected", [
    ("epochs", "2.5", "int"), ("epochs", "x", "int"), ("epochs", "true", "int"), ("alpha", "abc", "float"),
    ("verbose", "maybe", "bool"), ("flags", "3", "list"), ("opts", "[1]", "dict"),
])
def test_values_of_the_wrong_type_are_refused(typed, name, raw, expected):
    _, pipeline = typed
    message = rf"parameter '{name}' expects {expected} .*got '{re.escape(raw)}' from -p {name}"
    with pytest.raises(SameError, match=message):
        resolve_params(pipeline, {}, [(name, raw)])


def test_unknown_parameter_lists_the_valid_ones(typed):
    _, pipeline = typed
    with pytest.raises(SameError) as err:
        resolve_params(pipeline, {}, [("epoch", "3")])
    assert str(err.value) == ("unknown parameter 'epoch' (from -p epoch); valid parameters: "
                              "alpha, name, epochs, flags, opts, nothing, verbose")


def test_a_notebook_without_parameters_says_so(notebook_copy):
    from same_nb.local.prepared import prepare

    pipeline = prepare(notebook_copy("branching")).pipeline
    assert resolve_params(pipeline, {}, []) == {"n": 6}
    bare = prepare(notebook_copy("redefinition")).pipeline
    with pytest.raises(SameError, match=r"valid parameters: none \(the notebook has no parameters cell\)"):
        resolve_params(bare, {}, [("n", "1")])


def test_params_file_then_cli_overrides_then_types_are_checked(typed):
    nb, pipeline = typed
    good = nb.parent / "good.yaml"
    good.write_text("epochs: 4\nalpha: 1\nflags: [9]\n")
    values = resolve_params(pipeline, {"name": "from-manifest"}, [("epochs", "5")], good)
    picked = (values["epochs"], values["alpha"], values["flags"], values["name"])
    assert picked == (5, 1.0, [9], "from-manifest")
    bad = nb.parent / "bad.yaml"
    bad.write_text("epochs: four\n")
    with pytest.raises(SameError, match=f"expects int .* from {bad}"):
        resolve_params(pipeline, {}, [], bad)
    for broken in (b"epochs: [1\n", b"\xff\xfe not utf-8"):
        bad.write_bytes(broken)
        with pytest.raises(SameError, match=r"bad\.yaml.*(invalid YAML|UTF-8|utf-8|cannot read)"):
            resolve_params(pipeline, {}, [], bad)
    bad.write_text("unknown: 1\n")
    with pytest.raises(SameError, match=rf"unknown parameter 'unknown' \(from {bad}\); valid parameters: alpha"):
        resolve_params(pipeline, {}, [], bad)


# -- working directory, run folder, source untouched --------------------------------------------

@pytest.fixture(scope="module")
def relative_run(module_notebook_copy):
    nb = module_notebook_copy("relative_file", files={"data.txt": "alpha beta gamma\n"})
    before = (nb.read_bytes(), nb.stat().st_mtime_ns)
    return nb, before, run(nb, snapshot=True)


@pytest.mark.slow
def test_kernel_cwd_is_the_notebook_folder(relative_run):
    nb, _, result = relative_run
    assert result.ok, statuses(result)
    assert snapshot(result, "read")["text"] == "alpha beta gamma"
    assert snapshot(result, "count")["n_words"] == 3


@pytest.mark.slow
def test_run_folder_keeps_each_executed_notebook_and_log(relative_run):
    nb, _, result = relative_run
    assert result.run_dir == nb.parent / ".same" / "runs" / str(result.run_id)
    for step in ("read", "count"):
        executed = json.loads((result.run_dir / "steps" / f"{step}.ipynb").read_text())
        code = [c for c in executed["cells"] if c["cell_type"] == "code"]
        assert code and all(c["execution_count"] for c in code)
        assert (result.run_dir / "steps" / step / "log.txt").is_file()
        assert (result.run_dir / "steps" / step / "kernel.log").is_file()
        spec = json.loads((result.run_dir / "steps" / step / "spec.json").read_text())
        assert spec["step"] == step
    count = json.loads((result.run_dir / "steps" / "count.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in count["cells"] for o in c.get("outputs", []))
    assert "3 words" in printed
    rec = {s["step_name"]: s for s in stored_run(result)["steps"]}
    assert Path(rec["count"]["executed_notebook"]) == result.run_dir / "steps" / "count.ipynb"
    assert Path(rec["count"]["log_path"]).is_file()


@pytest.mark.slow
def test_source_notebook_is_unchanged_by_a_run(relative_run):
    nb, before, _ = relative_run
    assert (nb.read_bytes(), nb.stat().st_mtime_ns) == before


# -- data passing ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kinds_run(module_notebook_copy):
    nb = module_notebook_copy("data_kinds")
    return nb, run(nb, snapshot=True)


@pytest.mark.slow
def test_dataframe_as_arrow_and_ndarray_as_npy(kinds_run):
    nb, result = kinds_run
    assert result.ok, statuses(result)
    out = result.states["make"].outputs
    assert out["frame"]["kind"] == "pandas-dataframe"
    assert Path(out["frame"]["location"]).read_bytes()[:6] == b"ARROW1"
    assert out["arr"]["kind"] == "numpy-array"
    assert Path(out["arr"]["location"]).read_bytes()[:6] == b"\x93NUMPY"
    assert out["meta"]["kind"] == "pickle"


@pytest.mark.slow
def test_values_arrive_intact_and_modules_are_reimported(kinds_run):
    import numpy as np
    import pandas as pd

    nb, result = kinds_run
    made, used = snapshot(result, "make"), snapshot(result, "use")
    pd.testing.assert_frame_equal(used["frame"], made["frame"])
    np.testing.assert_array_equal(used["arr"], made["arr"])
    assert used["meta"] == {"name": "x", "tags": ("a", "b")}
    # `use` calls np.mean and pd.Series without importing numpy/pandas itself.
    assert used["mean"] == np.mean(made["arr"])
    assert used["total"] == float(made["frame"]["b"].sum()) + float(made["arr"].sum())
    assert used["same"] is True


@pytest.mark.slow
def test_artifacts_are_content_addressed_and_stored_once(kinds_run):
    nb, result = kinds_run
    out = result.states["make"].outputs
    assert out["arr"]["sha256"] == out["same_arr"]["sha256"]
    files = artifact_files(nb)
    for f in files:
        assert f.parent.name == f.name[:2]
        import hashlib
        assert hashlib.sha256(f.read_bytes()).hexdigest() == f.name
    # The same bytes again (a forced re-run) add no file.
    again = run(nb, use_cache=False, snapshot=True)
    assert again.ok
    assert again.states["make"].outputs["frame"]["sha256"] == out["frame"]["sha256"]
    assert artifact_files(nb) == files


@pytest.mark.slow
def test_notebook_functions_read_the_consuming_steps_globals(notebook_copy):
    result = run(notebook_copy("functions_across_steps"), snapshot=True)
    assert result.ok, statuses(result)
    used = snapshot(result, "use")
    assert used["threshold"] == 5                 # from step `change`, as in a top-to-bottom run
    assert used["kept"] == [6, 9]
    assert used["counted"] == 1


@pytest.mark.slow
def test_unpassable_value_fails_the_producer_with_a_fix(notebook_copy):
    result = run(notebook_copy("unpassable_value"))
    assert statuses(result) == {"open_file": "failed", "use_file": "skipped"}
    err = result.states["open_file"].error
    assert err["where"] == "saving outputs"
    message = err["evalue"]
    for part in ("'fh'", "TextIOWrapper", "open file", "'use_file'", "Open it inside"):
        assert part in message


# -- scheduling -----------------------------------------------------------------------------------

def _interval(step: dict) -> tuple:
    return step["started_at"], step["finished_at"]


@pytest.fixture(scope="module")
def sleep_runs(module_notebook_copy):
    nb = module_notebook_copy("parallel_sleep")
    return nb, run(nb, jobs=2, snapshot=True), run(nb, jobs=1, use_cache=False)


@pytest.mark.slow
def test_independent_steps_run_concurrently(sleep_runs):
    nb, parallel, _ = sleep_runs
    assert parallel.ok, statuses(parallel)
    steps = {s["step_name"]: s for s in stored_run(parallel)["steps"]}
    (l0, l1), (r0, r1) = _interval(steps["left"]), _interval(steps["right"])
    assert l0 < r1 and r0 < l1, "left and right did not overlap with -j 2"
    assert steps["join"]["started_at"] >= max(l1, r1)


@pytest.mark.slow
def test_jobs_1_runs_steps_one_at_a_time(sleep_runs):
    _, _, serial = sleep_runs
    assert serial.ok, statuses(serial)
    steps = sorted(stored_run(serial)["steps"], key=lambda s: s["started_at"])
    for before, after in zip(steps, steps[1:]):
        assert before["finished_at"] <= after["started_at"]


@pytest.mark.slow
def test_each_step_has_its_own_kernel_in_the_notebook_folder(sleep_runs):
    nb, parallel, _ = sleep_runs
    joined = snapshot(parallel, "join")
    assert len(set(joined["pids"])) == 3 and os.getpid() not in joined["pids"]
    assert Path(snapshot(parallel, "left")["left_cwd"]) == nb.parent


# -- failures and resume --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def failing_run(module_notebook_copy):
    nb = module_notebook_copy("failing_step")
    before = (nb.read_bytes(), nb.stat().st_mtime_ns)
    return nb, before, run(nb)


@pytest.mark.slow
def test_failure_skips_dependents_and_runs_independent_branch(failing_run):
    nb, before, result = failing_run
    assert result.status == "failed" and not result.ok
    assert statuses(result) == {"load": "success", "boom": "failed", "after_boom": "skipped",
                                "independent": "success"}
    assert "boom" in result.states["after_boom"].reason
    assert (nb.read_bytes(), nb.stat().st_mtime_ns) == before
    run_row = stored_run(result)
    assert run_row["status"] == "failed"
    assert {s["step_name"]: s["status"] for s in run_row["steps"]} == statuses(result)


@pytest.mark.slow
def test_failure_names_cell_line_and_exception(failing_run):
    nb, _, result = failing_run
    cells = json.loads(nb.read_text())["cells"]
    boom_cell = next(i for i, c in enumerate(cells, 1) if "step:boom" in c["metadata"].get("tags", []))
    err = result.states["boom"].error
    assert (err["cell"], err["line"], err["ename"]) == (boom_cell, 2, "ValueError")
    assert err["evalue"] == "bad total 6"
    executed = json.loads(result.states["boom"].executed.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "ValueError"


@pytest.mark.slow
def test_timeout_fails_the_step_at_the_running_cell(notebook_copy):
    nb = notebook_copy("wait_for_file")                  # its `wait` step waits for go.txt forever
    result = run(nb, timeout=1.5)
    assert statuses(result) == {"first": "success", "wait": "failed", "last": "skipped"}
    cells = json.loads(nb.read_text())["cells"]
    wait_cell = next(i for i, c in enumerate(cells, 1) if "step:wait" in c["metadata"].get("tags", []))
    err = result.states["wait"].error
    assert (err["ename"], err["cell"]) == ("CellTimeoutError", wait_cell)
    assert "timed out" in err["evalue"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_kernel_dying_on_import_fails_its_step_instead_of_hanging(write_notebook, tmp_path_factory,
                                                                     monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    site = tmp_path_factory.mktemp("site")                # outside the notebook folder: warmed up
    (site / "crashy.py").write_text("import os\nos._exit(3)  # like a C extension that segfaults\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    nb = write_notebook([(["step:a"], "x = 1"), (["step:b"], "import crashy\ny = x")], name="crash")
    result = run(nb)
    assert statuses(result) == {"a": "success", "b": "failed"}
    assert "kernel died while importing crashy" in result.states["b"].error["evalue"]


@pytest.mark.slow
def test_resume_reruns_only_what_did_not_succeed(notebook_copy):
    nb = notebook_copy("resume_flag")
    first = run(nb)
    assert statuses(first) == {"load": "success", "scale": "failed", "total": "skipped",
                               "independent": "success"}
    assert first.states["scale"].error["ename"] == "FileNotFoundError"
    (nb.parent / "flag.txt").write_text("3")
    resumed = run(nb, resume=first.run_id, snapshot=True)
    assert resumed.ok, statuses(resumed)
    assert resumed.run_id != first.run_id
    assert statuses(resumed) == {"load": "cached", "scale": "success", "total": "success",
                                 "independent": "cached"}
    assert resumed.states["load"].reason == f"done in run {first.run_id}"
    assert resumed.states["scale"].reason == f"failed in run {first.run_id}"
    assert not (resumed.run_dir / "steps" / "load").exists()
    assert snapshot(resumed, "total")["total"] == sum(v * 3 for v in [1, 2, 3])


@pytest.mark.slow
def test_resume_refuses_bad_requests(failing_run):
    nb, _, result = failing_run
    with pytest.raises(SameError, match="no run 999"):
        run(nb, resume=999)
    with pytest.raises(SameError, match="drop -p"):
        run(nb, resume=result.run_id, params=[("x", "1")])
    changed = nb.with_name("changed.ipynb")
    data = json.loads(nb.read_text())
    data["cells"][0]["source"] = "values = [1, 2, 3, 4]"
    changed.write_text(json.dumps(data))
    with pytest.raises(SameError, match="notebook changed"):
        run(changed, resume=result.run_id)
