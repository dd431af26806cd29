"""Compiled Kubeflow pipelines run under kfp.local, checked against same-nb's local runner.

kfp.local's SubprocessRunner(use_venv=False) runs every task as a subprocess of this interpreter,
through the same component function, bundle and component code a pod runs. This interpreter holds
every pin of the step locks (they pin what is installed here), so pods' "install what the lock
lacks" installs nothing; SAME_NB_KFP_INSTALL=never turns an install into this interpreter into a
failure instead, which is why it is harmless here. Whether the locks are complete is proved in clean
venvs by tests/kubeflow/test_pods.py, not here. SAME_NB_KFP_SNAPSHOT_DIR makes each step also save
every variable it ends with, to compare with a local `run_notebook(..., snapshot=True)`.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from same_nb.kubeflow.compiler import compile_kubeflow
from same_nb.kubeflow.component import SNAPSHOT_ENV, _literal, _place_input, render_html
from same_nb.kubeflow.podenv import INSTALL_ENV
from same_nb.kubeflow.submit import pipeline_arguments, read_pipeline
from same_nb.runtime import ArtifactStore, StepRuntimeError, load_value
from same_nb.service import run_notebook

from conftest import TESTS

NOTEBOOKS = TESTS / "notebooks"
slow = pytest.mark.slow
CASES = {
    "branching": {"n": 4},
    "functions_across_steps": {},
    "tags_parameters": {"alpha": 1.5, "name": "kfp", "epochs": 2},
    "kfp_pandas": {"rows": 3, "scale": 3.0, "columns": ["a", "b", "c"], "label": "x", "verbose": False},
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every case compiled once, side by side, so identical step locks are resolved by uv once."""
    folder = tmp_path_factory.mktemp("kfp-local")
    shutil.copyfile(NOTEBOOKS / "kfp_helper.py", folder / "kfp_helper.py")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        results = {}
        for name in [*CASES, "kfp_failing"]:
            shutil.copyfile(NOTEBOOKS / f"{name}.ipynb", folder / f"{name}.ipynb")
            results[name] = compile_kubeflow(folder / f"{name}.ipynb", folder / f"{name}-kubeflow")
        yield results


def _kfp_leftovers(root: Path) -> set[Path]:
    """What kfp.local leaves in a temp folder: its workspace and the tasks' program folders."""
    return set(root.glob("kfp-workspace-*")) | {p for p in root.glob("tmp.*") if (p / "ephemeral_component.py").exists()}


@pytest.fixture(scope="module")
def kfp_env(tmp_path_factory):
    """kfp.local with its outputs, workspace and every temp folder of its tasks inside one folder."""
    from kfp import local

    root = tmp_path_factory.mktemp("kfp-env")
    system_tmp = Path(tempfile.gettempdir())
    before = _kfp_leftovers(system_tmp)
    scratch = root / "tmp"
    scratch.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(scratch))                # the tasks' mktemp and tempfile
        mp.setattr(tempfile, "tempdir", str(scratch))
        mp.setenv(INSTALL_ENV, "never")
        mp.delenv("SAME_NB_DB", raising=False)
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "outputs"),
                   workspace_root=str(root / "workspace"))
        yield root, mp
    leaked = _kfp_leftovers(system_tmp) - before
    for path in leaked:
        shutil.rmtree(path, ignore_errors=True)
    assert not leaked, f"kfp.local left {sorted(leaked)} outside its folder"


@dataclass
class Runs:
    kfp_dir: Path           # kfp.local's <pipeline_root>/<pipeline>-<time>/
    snapshots: Path         # <step>/result.json and artifacts/ saved through SAME_NB_KFP_SNAPSHOT_DIR
    local: object           # service.RunResult of the same notebook with the same parameters


@pytest.fixture(scope="module")
def runs(compiled, kfp_env):
    """``runs(case)``: the case run once under kfp.local and once locally (memoised per module)."""
    from kfp.components import load_component_from_file

    root, mp = kfp_env
    done: dict[str, Runs] = {}

    def run(case: str) -> Runs:
        if case not in done:
            result, arguments = compiled[case], CASES[case]
            params_file = root / f"{case}.params.yaml"
            params_file.write_text(yaml.safe_dump(arguments))
            local = run_notebook(Path(result.pipeline.notebook), params_file=params_file, snapshot=True,
                                 use_cache=False)
            assert local.ok, local.states
            mp.setenv(SNAPSHOT_ENV, str(root / "snapshots" / case))
            pipeline = load_component_from_file(str(result.pipeline_yaml))
            pipeline(**pipeline_arguments(read_pipeline(result.pipeline_yaml), arguments))
            [kfp_dir] = (root / "outputs").glob(f"{result.name}-*")
            done[case] = Runs(kfp_dir, root / "snapshots" / case, local)
        return done[case]

    return run


def _hashes(records: dict) -> dict[str, str]:
    return {name: record["sha256"] for name, record in records.items()}


def _artifacts(task_dir: Path) -> dict:
    return json.loads((task_dir / "executor_output.json").read_text())["artifacts"]


@slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_kfp_local_run_equals_local_run(case, compiled, runs):
    result, run = compiled[case], runs(case)
    for step in result.pipeline.steps:
        local_result = json.loads((run.local.run_dir / "steps" / step.name / "result.json").read_text())
        kfp_result = json.loads((run.snapshots / step.name / "result.json").read_text())
        # Every variable the step ends with has the same bytes (content hash) in both runs.
        assert _hashes(kfp_result["snapshot"]) == _hashes(local_result["snapshot"]), step.name
        assert set(kfp_result["snapshot"]) >= set(step.outputs)
        task = run.kfp_dir / step.name
        for variable in step.outputs:
            artifact = _artifacts(task)[variable]["artifacts"][0]["metadata"]
            assert artifact["sha256"] == local_result["outputs"][variable]["sha256"]
            assert hashlib.sha256((task / variable).read_bytes()).hexdigest() == artifact["sha256"]
        page = (task / "same_nb_notebook").read_text()
        assert page.startswith("<!DOCTYPE html>")
        assert html.escape(step.cells[0].source.splitlines()[0]) in page


@slow
def test_kfp_local_metrics(runs):
    run = runs("kfp_pandas")

    def logged(task: str) -> dict:
        return _artifacts(run.kfp_dir / task)["same_nb_metrics"]["artifacts"][0]["metadata"]

    def metrics(task: str) -> dict:
        return {k: v for k, v in logged(task).items() if not k.startswith("same-nb.")}

    snapshot = json.loads((run.snapshots / "summarize" / "result.json").read_text())["snapshot"]
    score = load_value(snapshot["score"], ArtifactStore(run.snapshots / "summarize" / "artifacts"))
    assert metrics("load") == {"rows": 3.0}                  # same_nb.log_metric in the step
    assert metrics("summarize") == {"score": score}         # the pipeline-metrics cell
    assert metrics("scale") == {}
    # every step also logs its resources, as a local run records them
    for task in ("load", "scale", "summarize"):
        figures = {k.removeprefix("same-nb."): v for k, v in logged(task).items() if k.startswith("same-nb.")}
        assert set(figures) == {"peak_rss_bytes", "cpu_s", "bytes_in", "bytes_out", "task_peak_rss_bytes",
                                "task_cpu_s"}, task
        assert figures["cpu_s"] > 0 and figures["peak_rss_bytes"] >= 0
        # the whole task (component and kernel, start-up included) holds more than the step's window
        assert figures["task_peak_rss_bytes"] > figures["peak_rss_bytes"] and figures["task_cpu_s"] > figures["cpu_s"]
    made = _artifacts(run.kfp_dir / "load")
    assert logged("load")["same-nb.bytes_in"] == 0
    assert logged("load")["same-nb.bytes_out"] == sum(
        a["artifacts"][0]["metadata"]["size"] for name, a in made.items() if not name.startswith("same_nb_"))


@slow
def test_kfp_local_step_imports_the_unpacked_runtime(runs, kfp_env):
    page = (runs("kfp_pandas").kfp_dir / "load" / "same_nb_notebook").read_text()
    printed = Path(re.search(r"same_nb imported from (\S+)", page).group(1))
    assert printed.name == "__init__.py" and printed.parent.name == "same_nb"
    assert printed.is_relative_to(kfp_env[0] / "tmp")        # not the same-nb installed here


@slow
def test_kfp_local_failing_step_names_the_cell(compiled, kfp_env, capsys):
    from kfp.components import load_component_from_file

    with pytest.raises(RuntimeError, match="FAILURE"):
        load_component_from_file(str(compiled["kfp_failing"].pipeline_yaml))()
    logs = capsys.readouterr().out
    # "bad value 4": the local module kfp_helper.py beside the notebook was shipped and imported.
    assert "step 'boom' failed in cell 1 of the source notebook: ValueError: bad value 4" in logs
    [page] = (kfp_env[0] / "outputs").glob("kfp-failing-*/boom/same_nb_notebook")
    assert "bad value 4" in page.read_text()


@slow
@pytest.mark.filterwarnings("ignore:Task 'untagged-step'. settings .'display_name'. have no effect")
def test_kfp_local_untagged_notebook_runs_with_its_defaults(kfp_env, tmp_path):
    """An untagged notebook's one step is named like the pipeline: loaded as a user would, the file is
    still the pipeline, and calling it without arguments runs the step with the parameters' defaults."""
    from kfp.components import load_component_from_file

    from conftest import notebook_data

    nb = tmp_path / "untagged.ipynb"
    nb.write_text(json.dumps(notebook_data([(["parameters"], "alpha = 0.5\nlabel = \"it's\""),
                                            ([], "print('got', alpha * 4, label)")])))
    result = compile_kubeflow(nb, tmp_path / "untagged-kubeflow")
    load_component_from_file(str(result.pipeline_yaml))()
    [page] = (kfp_env[0] / "outputs").glob("untagged-*/*/same_nb_notebook")
    assert page.parent.name == "untagged-step"
    assert html.escape("got 2.0 it's") in page.read_text()


# -- pieces of the pod side, without kfp.local ---------------------------------------------------

class _Artifact:
    def __init__(self, path: Path, metadata: dict):
        self.path, self.uri, self.metadata = str(path), str(path), metadata


def test_literal_parameters_decode_exactly():
    assert _literal("s", "layers", "[64, 32]", "list") == [64, 32]
    assert _literal("s", "opts", '{"deep": true}', "dict") == {"deep": True}      # JSON is accepted too
    assert _literal("s", "seed", "None", "NoneType") is None
    assert _literal("s", "seed", "3", "NoneType") == 3
    assert _literal("s", "seed", "plain text", "NoneType") == "plain text"
    with pytest.raises(StepRuntimeError, match="parameter 'layers' must be a list .* got '{1: 2}'"):
        _literal("s", "layers", "{1: 2}", "list")


def test_input_without_same_nb_metadata_is_refused(tmp_path):
    source = tmp_path / "data"
    source.write_bytes(b"x")
    with pytest.raises(StepRuntimeError, match="input 'df' .* has no same-nb metadata"):
        _place_input("train", "df", _Artifact(source, {}), ArtifactStore(tmp_path / "store"))


def test_input_is_placed_under_its_hash(tmp_path):
    source = tmp_path / "data"
    source.write_bytes(b"payload")
    sha = hashlib.sha256(b"payload").hexdigest()
    store = ArtifactStore(tmp_path / "store")
    record = _place_input("train", "df", _Artifact(source, {"kind": "pickle", "type": "bytes"}), store)
    assert record == {"name": "df", "sha256": sha, "kind": "pickle", "type": "bytes", "size": 7}
    assert store.verified_path(sha, "df").read_bytes() == b"payload"


def test_basic_html_escapes_code_and_shows_outputs(tmp_path):
    png = "iVBORw0KGgo="
    nb = {"cells": [
        {"cell_type": "markdown", "source": "# <Title>", "metadata": {}},
        {"cell_type": "code", "execution_count": 1, "source": ["x = '<b>'\n", "print(x)"], "metadata": {},
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["<b>\n"]},
                     {"output_type": "display_data", "data": {"image/png": png, "text/plain": "fig"}},
                     {"output_type": "display_data", "data": {"image/png": "not base64!"}},
                     {"output_type": "error", "ename": "E", "evalue": "v",
                      "traceback": ["\x1b[0;31mValueError\x1b[0m: boom"]}]}]}
    executed = tmp_path / "step.ipynb"
    executed.write_text(json.dumps(nb))
    page = render_html(executed, "basic")
    assert "<b>" not in page and "&lt;b&gt;" in page and "# &lt;Title&gt;" in page
    assert f"data:image/png;base64,{png}" in page and "not base64!" not in page
    assert "ValueError: boom" in page and "\x1b" not in page


@slow
def test_kfp_local_dataframe_artifact_carries_its_profile(runs):
    """A pod keeps no store: the profile of a DataFrame output rides in its KFP artifact's metadata, the
    same as the local run's sidecar (KFP stores the numbers as floats)."""
    from same_nb.runtime.profile import read_profile

    run = runs("kfp_pandas")
    meta = _artifacts(run.kfp_dir / "load")["df"]["artifacts"][0]["metadata"]
    profile = meta["profile"]
    assert profile["kind"] == "dataframe" and profile["rows"] == 3
    assert [c["name"] for c in profile["column_stats"]] == ["a", "b", "c"]
    store = Path(run.local.pipeline.notebook).parent / ".same" / "artifacts"
    assert profile == read_profile(store, meta["sha256"])
