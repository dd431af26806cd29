"""compile_kubeflow: the structure of the compiled pipeline, read from the YAML the kfp compiler wrote."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
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

slow = pytest.mark.slow

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


def _bundle(result, step: str) -> dict[str, bytes]:
    """The files of kfp/bundle.tar.gz that a step's pod uses: the runtime, its folder and its lock."""
    with tarfile.open(result.bundle, "r:gz") as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
    assert hashlib.sha256(result.bundle.read_bytes()).hexdigest() == result.bundle_sha256
    prefix = f"steps/{step}/"
    return {(n[len(prefix):] if n.startswith(prefix) else n): data for n, data in files.items()
            if n.startswith((prefix, "same_nb/", f"envs/{step}/", "envs/uv.txt"))}


def test_pipeline_yaml_loads_as_a_component(compiled):
    from kfp.components import load_component_from_file

    result, _ = compiled("branching")
    component = load_component_from_file(str(result.pipeline_yaml))
    assert component.name == "branching"
    assert set(component.component_spec.inputs) == {"n", "same_nb_bundle_uri"}
    assert result.pipeline_py.read_text().count("@dsl.component(") == 4


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
        "alpha": (0.5, True), "label": ("it's", True), "epochs": (3, True),
        "same_nb_bundle_uri": (str(result.bundle.resolve()), True)}
    assert f"comp-{result.name}" not in spec["components"]
    # The step's task keeps the step's name where KFP shows it (and where `same-nb runs` reads states).
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(t["taskInfo"]["name"] for key, t in tasks.items() if key != "importer") == \
        sorted(s.name for s in result.pipeline.steps)
    renamed = next(key for key, t in tasks.items() if t["taskInfo"]["name"] == step)
    assert renamed != result.name and f"exec-{renamed}" in spec["deploymentSpec"]["executors"]
    launch = json.loads(_bundle(result, step)["step.json"])
    assert launch["step"] == step
    assert renamed == f"{step}-step".replace("_", "-")


def test_tasks_dependencies_and_artifact_wiring(compiled):
    _, spec = compiled("branching")
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"importer", "load", "left", "right", "join"}   # the importer brings the bundle
    assert tasks["load"]["dependentTasks"] == ["importer"]
    assert sorted(tasks["join"]["dependentTasks"]) == ["importer", "left", "right"]
    assert tasks["load"]["inputs"]["parameters"]["n"] == {"componentInputParameter": "n"}
    assert tasks["join"]["inputs"]["artifacts"]["left"]["taskOutputArtifact"] == \
        {"outputArtifactKey": "left", "producerTask": "left"}
    for consumer in ("left", "right"):
        assert tasks[consumer]["inputs"]["artifacts"]["base"]["taskOutputArtifact"] == \
            {"outputArtifactKey": "base", "producerTask": "load"}
    assert all(t["cachingOptions"] == {"enableCache": True} for k, t in tasks.items() if k != "importer")


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
    assert params.pop("same_nb_bundle_uri")["parameterType"] == "STRING"
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
    launch = json.loads(_bundle(result, "load")["step.json"])
    assert launch["literals"] == {"columns": "list", "options": "dict"}
    assert launch["parameters"] == {"columns": "columns", "options": "options", "rows": "rows"}
    assert launch["outputs"] == {"df": {"variable": "df", "consumers": ["scale"], "class": "Dataset"}}
    assert launch["metrics"] == ["score"]


def test_manifest_settings_reach_the_tasks(pandas):
    result, spec = pandas
    executors = {name.removeprefix("exec-"): e["container"] for name, e in spec["deploymentSpec"]["executors"].items()
                 if "container" in e}
    tasks = spec["root"]["dag"]["tasks"]
    assert executors["load"]["image"] == "registry.example.com/team/pandas:1.0"
    assert executors["scale"]["image"] == "python:3.12-slim"
    assert executors["summarize"]["image"] == "python:3.11-slim"
    resources = executors["load"]["resources"]
    assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"]) == ("500m", "2")
    assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == ("1Gi", "2Gi")
    assert (resources["accelerator"]["resourceType"], resources["accelerator"]["resourceCount"]) == ("NVIDIA_TESLA_T4", "1")
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
        "same_nb_bundle": {"taskOutputArtifact": {"outputArtifactKey": "artifact", "producerTask": "importer"}},
        "n": {"taskOutputArtifact": {"outputArtifactKey": "n_out", "producerTask": "make"}},
        "values_in": {"taskOutputArtifact": {"outputArtifactKey": "values", "producerTask": "make"}}}
    assert tasks["report"]["inputs"]["artifacts"]["values"]["taskOutputArtifact"] == \
        {"outputArtifactKey": "values", "producerTask": "grow"}


def test_bundle_ships_the_lock_and_the_step_runtime_outside_the_spec(pandas):
    result, spec = pandas
    files = _bundle(result, "load")
    lock = files["envs/load/requirements.txt"].decode()
    step_lock = (result.out_dir / "envs" / "load" / "requirements.txt").read_text()
    assert lock.startswith(step_lock.rstrip("\n")) and re.search(r"^kfp==", lock, re.M)
    entries = [e for e in lock.replace("\\\n", " ").splitlines() if e.strip() and not e.lstrip().startswith("#")]
    assert entries and all("--hash=sha256:" in e for e in entries)
    pinned = {e.split("==")[0].strip().lower() for e in entries}
    assert {"kfp", "papermill", "ipykernel", "pandas", "pyarrow"} <= pinned and "same-nb" not in pinned
    assert b"--hash=sha256:" in files["envs/uv.txt"]
    runtime = {f"same_nb/runtime/{p.name}" for p in (Path(__import__("same_nb").__file__).parent / "runtime").glob("*.py")}
    assert set(files) == {"step.json", "load.ipynb", "envs/load/requirements.txt", "envs/uv.txt",
                          "same_nb/__init__.py", "same_nb/_version.py", "same_nb/kubeflow/__init__.py",
                          "same_nb/kubeflow/component.py", "same_nb/kubeflow/podenv.py"} | runtime
    assert files["load.ipynb"] == (result.out_dir / "steps" / "load.ipynb").read_bytes()
    assert json.loads(files["step.json"])["step"] == "load"
    # Nothing of it travels in the spec: each container's command and args stay small.
    container = spec["deploymentSpec"]["executors"]["exec-load"]["container"]
    assert max(len(a) for a in container["command"] + container["args"]) < 4096
    assert "--hash=" not in result.pipeline_yaml.read_text()
    assert result.figures["max_argument"] < 4096


def test_local_modules_ship_with_their_step(compiled):
    result, spec = compiled("kfp_failing")
    files = _bundle(result, "boom")
    assert files["kfp_helper.py"] == (NOTEBOOKS / "kfp_helper.py").read_bytes()
    assert (result.out_dir / "kfp" / "bundle" / "steps" / "boom" / "kfp_helper.py").is_file()


def test_pod_locks_add_the_executor_and_the_producers_packages(pandas, compiled):
    result, _ = pandas

    def direct(root: Path, step: str) -> set[str]:
        lines = (root / "envs" / step / "requirements.in").read_text().splitlines()
        return {line.split("#")[0].strip() for line in lines if line and not line.startswith("#")}

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


@slow
@pytest.mark.parametrize("kfp_version", ["installed", "2.7.0"])
def test_pipeline_py_needs_only_kfp(compiled, tmp_path, kfp_version):
    """A clean venv with kfp (and its dependencies) from the registry, no same-nb: pipeline.py compiles,
    with the kfp installed here and with the oldest 2.x release same-nb supports."""
    from same_nb.envs.lock import uv_command

    result, spec = compiled("branching")
    venv = tmp_path / "venv"
    subprocess.run(uv_command() + ["venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    version = importlib.metadata.version("kfp") if kfp_version == "installed" else kfp_version
    subprocess.run(uv_command() + ["pip", "install", "--quiet", "--python", str(python), f"kfp=={version}"],
                   check=True, timeout=600)
    copy = shutil.copytree(result.out_dir, tmp_path / "bundle")
    (copy / "pipeline.yaml").unlink()
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    done = subprocess.run([str(python), "-c", "import same_nb"], capture_output=True, text=True, cwd=copy, env=clean)
    assert "No module named 'same_nb'" in done.stderr
    subprocess.run([str(python), "pipeline.py"], cwd=copy, check=True, capture_output=True, timeout=120, env=clean)
    rebuilt = yaml.safe_load((copy / "pipeline.yaml").read_text())
    if kfp_version == "installed":
        assert rebuilt == spec
    else:       # another kfp writes its own version and defaults; the pipeline is the same
        assert rebuilt["root"]["dag"]["tasks"].keys() == spec["root"]["dag"]["tasks"].keys()
        assert rebuilt["deploymentSpec"]["executors"].keys() == spec["deploymentSpec"]["executors"].keys()
        assert rebuilt["root"]["inputDefinitions"] == spec["root"]["inputDefinitions"]


def test_reserved_names_are_refused(folder):
    notebook = _notebook(folder / "reserved.ipynb", [(["step:a"], "same_nb_x = 1"), (["step:b"], "y = same_nb_x")])
    with pytest.raises(SameError, match="variable 'same_nb_x' crosses steps"):
        compile_kubeflow(notebook, folder / "reserved-kubeflow")


def test_manifest_default_must_fit_the_parameter_type(folder):
    manifest = folder / "bad.same.yaml"
    manifest.write_text("run:\n  parameters: {n: six}\n")
    with pytest.raises(SameError, match="parameter 'n': same.yaml sets 'six', but the notebook's default is a int"):
        compile_kubeflow(folder / "branching.ipynb", folder / "bad-kubeflow", manifest_path=manifest)


def test_secrets_and_volumes_go_through_kfp_kubernetes_never_in_clear_text(folder):
    manifest = folder / "k8s.same.yaml"
    manifest.write_text("run:\n  secrets: {DB_PASSWORD: {secret: db-creds, key: password}}\n"
                        "  volumes: [{pvc: shared-data, mount_path: /data}]\n")
    result = compile_kubeflow(folder / "branching.ipynb", folder / "k8s-kubeflow", manifest_path=manifest)
    assert "from kfp import kubernetes as same_nb_kubernetes" in result.pipeline_py.read_text()
    documents = list(yaml.safe_load_all(result.pipeline_yaml.read_text()))
    pipeline, platform = documents
    executors = pipeline["deploymentSpec"]["executors"]
    assert not any("DB_PASSWORD" in json.dumps(e) for e in executors.values())
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-load"]
    assert config["secretAsEnv"][0]["secretName"] == "db-creds"
    assert config["secretAsEnv"][0]["keyToEnv"] == [{"envVar": "DB_PASSWORD", "secretKey": "password"}]
    assert config["pvcMount"][0]["mountPath"] == "/data"
    plain = folder / "plain.same.yaml"
    plain.write_text("run:\n  env: {DB_PASSWORD: hunter2}\n")
    with pytest.raises(SameError, match=r"run\.env\.DB_PASSWORD.*run\.secrets"):
        compile_kubeflow(folder / "branching.ipynb", folder / "plain-kubeflow", manifest_path=plain)


def test_with_an_image_each_step_runs_its_locks_image_and_nothing_is_imported(compiled, folder):
    from same_nb.kubeflow.images import lock_id

    result = compile_kubeflow(folder / "branching.ipynb", folder / "image-kubeflow",
                              image="registry.example.com/team/branching")
    spec = yaml.safe_load(result.pipeline_yaml.read_text())
    assert "importer" not in spec["root"]["dag"]["tasks"] and result.bundle_uri is None
    assert "same_nb_bundle_uri" not in spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for step in result.pipeline.steps:
        lock = (result.out_dir / "kfp" / "bundle" / "envs" / step.name / "requirements.txt").read_text()
        image = f"registry.example.com/team/branching:{lock_id(lock)}"
        assert result.images[step.name] == image
        container = spec["deploymentSpec"]["executors"][f"exec-{step.name}"]["container"]
        assert container["image"] == image
        assert "pip install" not in " ".join(container["command"])        # kfp preinstalled in the image
        context = result.out_dir / "kfp" / "images" / lock_id(lock)
        assert (context / "requirements.txt").read_text() == lock
        assert (context / "bundle.tar.gz").read_bytes() == result.bundle.read_bytes()
        dockerfile = (context / "Dockerfile").read_text()
        assert "--require-hashes" in dockerfile and "SAME_NB_BUNDLE" in dockerfile


def test_the_bundle_uri_comes_from_same_yaml_or_the_option(folder):
    manifest = folder / "uri.same.yaml"
    manifest.write_text("environment:\n  bundle_uri: minio://mlpipeline/same-nb/branching.tar.gz\n")
    result = compile_kubeflow(folder / "branching.ipynb", folder / "uri-kubeflow", manifest_path=manifest)
    spec = yaml.safe_load(result.pipeline_yaml.read_text())
    assert spec["root"]["inputDefinitions"]["parameters"]["same_nb_bundle_uri"]["defaultValue"] == \
        "minio://mlpipeline/same-nb/branching.tar.gz"
    assert not [w for w in result.warnings if "local path" in w]
    with pytest.raises(SameError, match="pods import the bundle from gs://, s3:// or minio://"):
        compile_kubeflow(folder / "branching.ipynb", folder / "uri-kubeflow", bundle_uri="https://x/y.tar.gz")
    manifest.write_text("environment:\n  bundle_uri: 'ftp://host/x'\n")
    with pytest.raises(SameError, match="bundle URI"):
        compile_kubeflow(folder / "branching.ipynb", folder / "uri-kubeflow", manifest_path=manifest)


def test_data_checks_are_said_to_be_local_only(folder):
    manifest = folder / "checks.same.yaml"
    manifest.write_text("checks:\n  drift:\n    psi_fail: 0.25\n")
    result = compile_kubeflow(folder / "branching.ipynb", folder / "checks-kubeflow", manifest_path=manifest)
    assert [w for w in result.warnings if w.startswith("same.yaml's checks run after local runs only")]
    plain = compile_kubeflow(folder / "branching.ipynb", folder / "checks-kubeflow")
    assert not [w for w in plain.warnings if w.startswith("same.yaml's checks")]


def test_an_index_url_reaches_every_install_in_the_pods(folder):
    """Offline clusters: kfp's own install and the lock's come from the mirror same.yaml names."""
    manifest = folder / "mirror.same.yaml"
    manifest.write_text("environment:\n  index_url: https://pypi.internal.example/simple\n")
    result = compile_kubeflow(folder / "branching.ipynb", folder / "mirror-kubeflow", manifest_path=manifest)
    spec = yaml.safe_load(result.pipeline_yaml.read_text())
    for step in result.pipeline.steps:
        env = spec["deploymentSpec"]["executors"][f"exec-{step.name}"]["container"]["env"]
        assert {"name": "PIP_INDEX_URL", "value": "https://pypi.internal.example/simple"} in env
        launch = json.loads((result.out_dir / "kfp" / "bundle" / "steps" / step.name / "step.json").read_text())
        assert launch["index_url"] == "https://pypi.internal.example/simple"
    for context in (result.out_dir / "kfp" / "images").iterdir():
        if context.is_dir():
            assert "https://pypi.internal.example/simple" in (context / "Dockerfile").read_text()
