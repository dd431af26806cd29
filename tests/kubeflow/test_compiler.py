"""compile_kubeflow: the structure of the compiled pipeline, read from the YAML the kfp compiler wrote."""
from __future__ import annotations

import base64
import importlib.metadata
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from same_nb.errors import SameError
from same_nb.kubeflow.compiler import compile_kubeflow

from conftest import TESTS

NOTEBOOKS = TESTS / "notebooks"
MANIFEST = """\
apiVersion: same-nb/v1
environment:
  base_image: python:3.11-slim
run:
  retries: 1
  env: {SHARED: "all steps"}
steps:
  load:
    image: registry.example.com/team/pandas:1.0
    resources: {cpu: "500m", memory: "1Gi", cpu_limit: "2", memory_limit: "2Gi", gpu: 1, accelerator: "nvidia-tesla-t4"}
    env: {ONLY_LOAD: "yes"}
    retries: 3
    cache: false
  scale:
    image: python:3.12-slim
  summarize:
    resources: {gpu: 2}
"""


def _notebook(path: Path, cells: list[tuple[list[str], str]]) -> Path:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {"tags": tags},
                   "outputs": [], "source": source} for i, (tags, source) in enumerate(cells)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Notebooks side by side: their step locks share one uv cache."""
    root = tmp_path_factory.mktemp("kfp-compile")
    for name in ("branching", "tags_parameters", "kfp_pandas", "kfp_failing"):
        shutil.copyfile(NOTEBOOKS / f"{name}.ipynb", root / f"{name}.ipynb")
    shutil.copyfile(NOTEBOOKS / "kfp_helper.py", root / "kfp_helper.py")
    (root / "pandas.same.yaml").write_text(MANIFEST)
    _notebook(root / "rebind.ipynb", [
        (["parameters"], "n = 2"),
        (["step:make"], "values = list(range(n))\nn = n + 1"),
        (["step:grow"], "values = values + [n]"),
        (["step:report"], "total = sum(values)"),
    ])
    return root


@pytest.fixture(scope="module")
def compiled(folder):
    done = {}

    def compile_once(name: str, **options):
        if name not in done:
            result = compile_kubeflow(folder / f"{name}.ipynb", folder / f"{name}-kubeflow", **options)
            done[name] = (result, yaml.safe_load(result.pipeline_yaml.read_text()))
        return done[name]

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        yield compile_once


@pytest.fixture(scope="module")
def pandas(compiled, folder):
    return compiled("kfp_pandas", manifest_path=folder / "pandas.same.yaml")


def _launcher(spec: dict, step: str) -> tuple[str, str, dict[str, bytes]]:
    """(install command, embedded lock, embedded files) of a step's launcher script."""
    command = spec["deploymentSpec"]["executors"][f"exec-{step}"]["container"]["command"]
    assert command[:2] == ["sh", "-ec"] and command[3:6] == ["same-nb-launcher", "sh", "-ec"]
    script = command[2]
    lock = re.search(r"<<'SAME_NB_LOCK'\n(.*?)\nSAME_NB_LOCK\n", script, re.S).group(1)
    payload = re.search(r"<<'SAME_NB_FILES'\n(.*?)\nSAME_NB_FILES\n", script, re.S).group(1)
    archive = tarfile.open(fileobj=io.BytesIO(base64.b64decode(payload)), mode="r:xz")
    install = next(line for line in script.splitlines() if "-m pip install" in line)
    return install, lock, {m.name: archive.extractfile(m).read() for m in archive.getmembers()}


def test_pipeline_yaml_loads_as_a_component(compiled):
    from kfp.components import load_component_from_file

    result, _ = compiled("branching")
    component = load_component_from_file(str(result.pipeline_yaml))
    assert component.name == "branching"
    assert set(component.component_spec.inputs) == {"n"}
    assert result.pipeline_py.read_text().count("@notebook_step(") == 4


@pytest.mark.parametrize("name, cells, step", [
    # An untagged notebook: one step, named after the notebook, like the pipeline.
    ("untagged", [(["parameters"], "alpha = 0.5\nlabel = \"it's\"\nepochs = 3"), ([], "total = alpha * epochs")],
     "untagged"),
    # A tagged step named after its notebook (kfp cleans `loaded_data` to `loaded-data`, the pipeline's name).
    ("loaded_data", [(["parameters"], "alpha = 0.5\nlabel = \"it's\"\nepochs = 3"),
                     (["step:prepare"], "x = alpha * epochs"), (["step:loaded_data"], "total = x + len(label)")],
     "loaded_data"),
])
def test_a_step_named_like_the_pipeline_does_not_hide_it(compiled, folder, name, cells, step):
    """kfp's loader takes the component keyed `comp-<pipeline name>` when there is one: a step of that
    name would load instead of the pipeline, every parameter losing its default."""
    from kfp.components import load_component_from_file

    _notebook(folder / f"{name}.ipynb", cells)
    result, spec = compiled(name)
    assert result.name == name.replace("_", "-") and step in {s.name for s in result.pipeline.steps}
    component = load_component_from_file(str(result.pipeline_yaml))
    assert component.name == result.name
    inputs = component.component_spec.inputs
    assert {k: (v.default, v.optional) for k, v in inputs.items()} == {
        "alpha": (0.5, True), "label": ("it's", True), "epochs": (3, True)}
    assert f"comp-{result.name}" not in spec["components"]
    # The step's task keeps the step's name where KFP shows it (and where `same-nb runs` reads states).
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(t["taskInfo"]["name"] for t in tasks.values()) == sorted(s.name for s in result.pipeline.steps)
    renamed = next(key for key, t in tasks.items() if t["taskInfo"]["name"] == step)
    assert renamed != result.name and f"exec-{renamed}" in spec["deploymentSpec"]["executors"]
    launch = json.loads((result.out_dir / "kfp" / step / "step.json").read_text())
    assert (launch["step"], launch["component"]) == (step, f"{step}-step")
    assert renamed == f"{step}-step".replace("_", "-")


def test_tasks_dependencies_and_artifact_wiring(compiled):
    _, spec = compiled("branching")
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"load", "left", "right", "join"}
    assert "dependentTasks" not in tasks["load"]
    assert sorted(tasks["join"]["dependentTasks"]) == ["left", "right"]
    assert tasks["load"]["inputs"]["parameters"]["n"] == {"componentInputParameter": "n"}
    assert tasks["join"]["inputs"]["artifacts"]["left"]["taskOutputArtifact"] == \
        {"outputArtifactKey": "left", "producerTask": "left"}
    for consumer in ("left", "right"):
        assert tasks[consumer]["inputs"]["artifacts"]["base"]["taskOutputArtifact"] == \
            {"outputArtifactKey": "base", "producerTask": "load"}
    assert all(t["cachingOptions"] == {"enableCache": True} for t in tasks.values())


def test_artifact_types(compiled):
    _, spec = compiled("branching")
    left = spec["components"]["comp-left"]
    outputs = {k: v["artifactType"]["schemaTitle"] for k, v in left["outputDefinitions"]["artifacts"].items()}
    assert outputs == {"left": "system.Dataset", "same_nb_notebook": "system.HTML",
                       "same_nb_metrics": "system.Metrics"}
    assert left["inputDefinitions"]["artifacts"]["base"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert "parameters" not in left["inputDefinitions"]


def test_parameter_types_and_defaults_are_per_run_inputs(compiled):
    _, spec = compiled("tags_parameters")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {k: (v["parameterType"], v["defaultValue"]) for k, v in params.items()} == {
        "alpha": ("NUMBER_DOUBLE", 0.5), "name": ("STRING", "run"), "epochs": ("NUMBER_INTEGER", 3),
        "verbose": ("BOOLEAN", False),
        # lists, dicts and None defaults are literal text: KFP would turn [1, 2] into [1.0, 2.0]
        "flags": ("STRING", "[1, 2]"), "opts": ("STRING", "{'a': 1}"), "nothing": ("STRING", "None")}
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["prep"]["inputs"]["parameters"] == {"alpha": {"componentInputParameter": "alpha"},
                                                     "epochs": {"componentInputParameter": "epochs"}}
    prep = spec["components"]["comp-prep"]["inputDefinitions"]["parameters"]
    assert {k: v["parameterType"] for k, v in prep.items()} == {"alpha": "NUMBER_DOUBLE", "epochs": "NUMBER_INTEGER"}


def test_literal_parameters_are_marked_for_the_pod(pandas):
    result, _ = pandas
    launch = json.loads((result.out_dir / "kfp" / "load" / "step.json").read_text())
    assert launch["literals"] == {"columns": "list", "options": "dict"}
    assert launch["parameters"] == {"columns": "columns", "options": "options", "rows": "rows"}
    assert launch["outputs"] == {"df": {"variable": "df", "consumers": ["scale"]}}
    assert launch["metrics"] == ["score"]


def test_manifest_settings_reach_the_tasks(pandas):
    result, spec = pandas
    executors = {name.removeprefix("exec-"): e["container"] for name, e in spec["deploymentSpec"]["executors"].items()}
    tasks = spec["root"]["dag"]["tasks"]
    assert executors["load"]["image"] == "registry.example.com/team/pandas:1.0"
    assert executors["scale"]["image"] == "python:3.12-slim"
    assert executors["summarize"]["image"] == "python:3.11-slim"
    resources = executors["load"]["resources"]
    assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"]) == ("500m", "2")
    assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == ("1Gi", "2Gi")
    assert (resources["accelerator"]["resourceType"], resources["accelerator"]["resourceCount"]) == ("nvidia-tesla-t4", "1")
    gpu = executors["summarize"]["resources"]["accelerator"]
    assert (gpu["resourceType"], gpu["resourceCount"]) == ("nvidia.com/gpu", "2")
    assert "resources" not in executors["scale"]
    assert {e["name"]: e["value"] for e in executors["load"]["env"]} == {"SHARED": "all steps", "ONLY_LOAD": "yes"}
    assert executors["scale"]["env"] == [{"name": "SHARED", "value": "all steps"}]
    assert tasks["load"]["retryPolicy"]["maxRetryCount"] == 3 and tasks["scale"]["retryPolicy"]["maxRetryCount"] == 1
    assert tasks["load"]["cachingOptions"] == {} and tasks["scale"]["cachingOptions"] == {"enableCache": True}
    assert any("scale: image python:3.12-slim runs Python 3.12 but the lock is for Python 3.11" in w
               for w in result.warnings)


def test_rebound_variables_get_distinct_argument_names(compiled):
    _, spec = compiled("rebind")
    tasks = spec["root"]["dag"]["tasks"]
    make = spec["components"]["comp-make"]
    assert set(make["inputDefinitions"]["parameters"]) == {"n"}
    assert set(make["outputDefinitions"]["artifacts"]) == {"n_out", "values", "same_nb_notebook", "same_nb_metrics"}
    assert tasks["grow"]["inputs"]["artifacts"] == {
        "n": {"taskOutputArtifact": {"outputArtifactKey": "n_out", "producerTask": "make"}},
        "values_in": {"taskOutputArtifact": {"outputArtifactKey": "values", "producerTask": "make"}}}
    assert tasks["report"]["inputs"]["artifacts"]["values"]["taskOutputArtifact"] == \
        {"outputArtifactKey": "values", "producerTask": "grow"}


def test_launcher_installs_only_the_lock_and_ships_the_step_runtime(pandas):
    result, spec = pandas
    install, lock, files = _launcher(spec, "load")
    assert install.strip().endswith('python3 -m pip install --quiet --no-warn-script-location --no-deps '
                                    '--require-hashes -r "$lock"')
    step_lock = (result.out_dir / "envs" / "load" / "requirements.txt").read_text()
    executor = (result.out_dir / "envs" / "kfp-executor.txt").read_text()
    assert lock == step_lock.rstrip("\n") + "\n" + executor.rstrip("\n")
    entries = [e for e in lock.replace("\\\n", " ").splitlines() if e.strip() and not e.lstrip().startswith("#")]
    assert entries and all("--hash=sha256:" in e for e in entries)
    pinned = {e.split("==")[0].strip().lower() for e in entries}
    assert {"kfp", "papermill", "ipykernel", "pandas", "pyarrow"} <= pinned and "same-nb" not in pinned
    runtime = {f"same_nb/runtime/{p.name}" for p in (Path(__import__("same_nb").__file__).parent / "runtime").glob("*.py")}
    assert set(files) == {"step.json", "load.ipynb", "same_nb/__init__.py", "same_nb/_version.py",
                          "same_nb/kubeflow/__init__.py", "same_nb/kubeflow/component.py"} | runtime
    assert "same_nb/runtime/notebook_engine.py" in files          # the pod's papermill engine
    assert files["load.ipynb"] == (result.out_dir / "steps" / "load.ipynb").read_bytes()
    assert json.loads(files["step.json"])["step"] == "load"


def test_local_modules_ship_with_their_step(compiled):
    result, spec = compiled("kfp_failing")
    _, _, files = _launcher(spec, "boom")
    assert files["kfp_helper.py"] == (NOTEBOOKS / "kfp_helper.py").read_bytes()
    assert (result.out_dir / "kfp" / "boom" / "kfp_helper.py").is_file()


def test_pod_locks_add_the_executor_and_the_producers_packages(pandas, compiled):
    result, _ = pandas

    def direct(root: Path, step: str) -> set[str]:
        lines = (root / "envs" / step / "requirements.in").read_text().splitlines()
        return {line for line in lines if line and not line.startswith("#")}

    def pin(dist: str) -> str:
        return f"{dist}=={importlib.metadata.version(dist)}"

    executor = {pin("papermill"), pin("ipykernel"), pin("cloudpickle")}
    # scale never imports pandas, but loads the DataFrame that load made.
    assert direct(result.out_dir, "scale") == executor | {pin("pandas"), pin("pyarrow")}
    assert not any(line.lower().startswith("same") for line in direct(result.out_dir, "load"))
    branching, _ = compiled("branching")
    assert direct(branching.out_dir, "join") == executor


def test_pipeline_py_rebuilds_the_same_pipeline(compiled, tmp_path):
    result, spec = compiled("branching")
    copy = shutil.copytree(result.out_dir, tmp_path / "bundle")
    (copy / "pipeline.yaml").unlink()
    subprocess.run([sys.executable, "pipeline.py"], cwd=copy, check=True, capture_output=True, timeout=120)
    assert yaml.safe_load((copy / "pipeline.yaml").read_text()) == spec


def test_reserved_names_are_refused(folder):
    notebook = _notebook(folder / "reserved.ipynb", [(["step:a"], "same_nb_x = 1"), (["step:b"], "y = same_nb_x")])
    with pytest.raises(SameError, match="variable 'same_nb_x' crosses steps"):
        compile_kubeflow(notebook, folder / "reserved-kubeflow")


def test_manifest_default_must_fit_the_parameter_type(folder):
    manifest = folder / "bad.same.yaml"
    manifest.write_text("run:\n  parameters: {n: six}\n")
    with pytest.raises(SameError, match="parameter 'n': same.yaml sets 'six', but the notebook's default is a int"):
        compile_kubeflow(folder / "branching.ipynb", folder / "bad-kubeflow", manifest_path=manifest)
