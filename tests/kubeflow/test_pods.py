"""Compiled pipelines run in clean pods and compute what the local run computed.

The main test of the Kubeflow target. Each task of pipeline.yaml runs as a pod would
(same_nb.kubeflow.podsim): a fresh `python -m venv` with no site packages and no same-nb, kfp's own
command installing kfp, the component function unpacking the bundle KFP's importer passed it,
installing the step's lock from the package registry with uv, hashes required, then running the
step notebook, with the executor input, working directory and artifact paths laid out as KFP's
launcher does. The whole pipeline must succeed and every output must have the sha256 the local run
recorded. "With image" runs build each task's venv as the generated Dockerfile would (its install
commands) and compile with --image: the pod installs nothing.

SAME_NB_POD_CASES picks the cases (comma-separated; default: all five).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from same_nb.kubeflow.compiler import compile_kubeflow
from same_nb.kubeflow.images import install_commands, lock_id
from same_nb.kubeflow.podsim import output_digests, simulate
from same_nb.service import run_notebook
from same_nb.store.database import open_store

from conftest import TESTS

EXAMPLES = TESTS.parent / "examples"
NOTEBOOKS = TESTS / "notebooks"
CASES = {   # name → (folder to copy, notebook, parameters)
    "quickstart": (EXAMPLES / "quickstart", "quickstart.ipynb", {}),
    "branching": (EXAMPLES / "branching", "branching.ipynb", {}),
    "data_and_files": (EXAMPLES / "data_and_files", "data_and_files.ipynb", {}),
    "kfp_pandas": (NOTEBOOKS, "kfp_pandas.ipynb", {"rows": 3, "columns": ["a", "b", "c"], "verbose": False}),
    "functions_across_steps": (NOTEBOOKS, "functions_across_steps.ipynb", {}),
}
SELECTED = [c for c in os.environ.get("SAME_NB_POD_CASES", ",".join(CASES)).split(",") if c]
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def pip_cache(tmp_path_factory):
    """Pods share download caches (as a cluster's nodes cache image layers); nothing else."""
    return tmp_path_factory.mktemp("pod-cache")


def _prepare_case(case: str, root: Path) -> tuple[Path, dict]:
    source, notebook, params = CASES[case]
    folder = root / case
    if source == NOTEBOOKS:
        folder.mkdir()
        shutil.copyfile(source / notebook, folder / notebook)
        for helper in source.glob("kfp_helper.py"):
            shutil.copyfile(helper, folder / helper.name)
    else:
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns(".same", "*-pipeline", "*-kubeflow"))
    return folder / notebook, params


def _local_outputs(notebook: Path, params: dict) -> dict[str, dict[str, str]]:
    """step → variable → sha256, from a fresh local run (which also records what each step loaded).
    Files a step wrote are recorded too, but pods do not share files: only variables cross in KFP."""
    params_file = notebook.parent / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    result = run_notebook(notebook, params_file=params_file, use_cache=False)
    assert result.ok, result.states
    with open_store(notebook_dir=notebook.parent) as store:
        run = store.get_run(result.run_id)
    variables = {s.name: set(s.outputs) for s in result.pipeline.steps}
    return {s["step_name"]: {o["name"]: o["sha256"] for o in s["outputs"] if o["name"] in variables[s["step_name"]]}
            for s in run["steps"]}


def _pod_outputs(sim) -> dict[str, dict[str, str]]:
    """step → variable → sha256 of the artifact file, checked against the sha256 its pod recorded."""
    found = {}
    digests = output_digests(sim)
    for task in sim.tasks.values():
        if task.kind != "container":
            continue
        for name, artifact in task.outputs.items():
            meta = artifact.get("metadata") or {}
            if "variable" not in meta:
                continue
            assert digests[task.name][name]["sha256"] == meta["sha256"], (task.name, name)
            found.setdefault(meta["step"], {})[meta["variable"]] = meta["sha256"]
    return found


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("pods")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        done = {}
        for case in SELECTED:
            notebook, params = _prepare_case(case, root)
            local = _local_outputs(notebook, params)
            done[case] = (notebook, params, local)
        yield done


@slow
@pytest.mark.parametrize("case", SELECTED)
def test_clean_pods_compute_what_the_local_run_computed(case, cases, pip_cache, tmp_path):
    notebook, params, local = cases[case]
    compiled = compile_kubeflow(notebook, notebook.parent / "kubeflow")
    sim = simulate(compiled.pipeline_yaml, arguments=_arguments(compiled, params), workdir=tmp_path / "sim",
                   cache_dir=pip_cache)
    assert sim.ok, sim.render()
    assert _pod_outputs(sim) == {s: v for s, v in local.items() if v}
    for task in sim.tasks.values():
        if task.kind == "container":
            log = task.log.read_text(errors="replace")
            assert "locked packages" in log and "same_nb" not in _installed(log)


@slow
def test_with_an_image_pods_install_nothing(cases, pip_cache, tmp_path):
    case = SELECTED[0]
    notebook, params, local = cases[case]
    compiled = compile_kubeflow(notebook, tmp_path / "kubeflow", image="registry.example.com/team/pods")
    assert compiled.bundle_uri is None and set(compiled.images) == {s.name for s in compiled.pipeline.steps}
    contexts = compiled.out_dir / "kfp" / "images"

    def build_image(pod) -> None:            # what the step's Dockerfile does, into the pod's venv
        lock = (compiled.out_dir / "kfp" / "bundle" / "envs" / _step_of(compiled, pod.task)
                / "requirements.txt").read_text()
        context = contexts / lock_id(lock)
        assert compiled.images[_step_of(compiled, pod.task)].endswith(":" + lock_id(lock))
        for argv in install_commands(str(pod.python), context, None):
            pod.run(argv)
        pod.env.update({"SAME_NB_BUNDLE": str(context / "bundle.tar.gz"),
                        "SAME_NB_LOCK_SHA256": _sha256(lock)})

    sim = simulate(compiled.pipeline_yaml, arguments=_arguments(compiled, params), workdir=tmp_path / "sim",
                   cache_dir=pip_cache, prepare=build_image)
    assert sim.ok, sim.render()
    assert _pod_outputs(sim) == {s: v for s, v in local.items() if v}
    for task in sim.tasks.values():
        if task.kind == "container":
            assert "are installed" in task.log.read_text(errors="replace")     # nothing installed at start


def _arguments(compiled, params: dict) -> dict:
    from same_nb.kubeflow.submit import pipeline_arguments, read_pipeline

    return pipeline_arguments(read_pipeline(compiled.pipeline_yaml), params)


def _step_of(compiled, task: str) -> str:
    spec = yaml.safe_load(compiled.pipeline_yaml.read_text())
    return spec["root"]["dag"]["tasks"][task]["taskInfo"]["name"]


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _installed(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if line.startswith(" + "))
