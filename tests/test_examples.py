"""The examples under examples/ compile, run locally and run under kfp.local.

Each example is copied into a temporary folder first: runs write `.same/` beside the notebook.
The kfp.local harness (kfp_env: SubprocessRunner without venvs, SAME_NB_KFP_INSTALL=never) is the one
from kubeflow/test_kfp_local.py; clean pods are tests/kubeflow/test_pods.py.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from kubeflow.test_kfp_local import _artifacts, kfp_env  # noqa: F401  (kfp_env is a fixture used below)

from same_nb.cli import main
from same_nb.kubeflow.compiler import compile_kubeflow
from same_nb.kubeflow.submit import pipeline_arguments, read_pipeline

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The metric each example logs with same_nb.log_metric, and the step that logs it.
METRICS = {"quickstart": ("evaluate", "accuracy"), "branching": ("evaluate", "cv_accuracy"),
           "data_and_files": ("evaluate", "r2")}
pytestmark = pytest.mark.slow


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def copy_example(name: str, folder: Path) -> Path:
    shutil.copytree(EXAMPLES / name, folder / name,
                    ignore=shutil.ignore_patterns(".same", "models", "*-pipeline", ".ipynb_checkpoints"))
    return folder / name / f"{name}.ipynb"


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == set(METRICS)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_example_compiles_identically_twice(name, tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = copy_example(name, tmp_path)
    bundles = []
    for out in ("first", "second"):
        rc, stdout, stderr = cli("compile", nb, "-o", tmp_path / out, "--no-lock")
        assert rc == 0, stderr
        bundles.append(tree(tmp_path / out))
    assert {"same.yaml", "pipeline.json", f"steps/{METRICS[name][0]}.ipynb"} <= set(bundles[0])
    assert bundles[0] == bundles[1]


@pytest.mark.parametrize("name", sorted(METRICS))
def test_example_runs_locally_and_records_its_metric(name, tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = copy_example(name, tmp_path)
    source = nb.read_bytes()
    rc, _, stderr = cli("run", nb, "-q")
    assert rc == 0, stderr
    rc, out, stderr = cli("show", "1", "--dir", nb.parent, "--json")
    assert rc == 0, stderr
    run = json.loads(out)
    assert run["status"] == "success"
    step, metric = METRICS[name]
    logged = [m for s in run["steps"] for m in s["metrics"] if m["name"] == metric]
    assert len(logged) == 1 and isinstance(logged[0]["value"], float)
    assert nb.read_bytes() == source                              # the source notebook is never written


@pytest.mark.parametrize("name", sorted(METRICS))
def test_example_runs_under_kfp_local(name, tmp_path_factory, kfp_env):  # noqa: F811
    from kfp.components import load_component_from_file

    root, _ = kfp_env
    nb = copy_example(name, tmp_path_factory.mktemp(f"kfp-{name}"))
    result = compile_kubeflow(nb, nb.parent / "kubeflow")
    pipeline = load_component_from_file(str(result.pipeline_yaml))
    pipeline(**pipeline_arguments(read_pipeline(result.pipeline_yaml), {}))
    [kfp_dir] = (root / "outputs").glob(f"{result.name}-*")
    step, metric = METRICS[name]
    metrics = _artifacts(kfp_dir / step)["same_nb_metrics"]["artifacts"][0]["metadata"]
    user = {k for k in metrics if not k.startswith("same-nb.")}
    assert user == {metric} and isinstance(metrics[metric], float)
    # beside the user's metric, the step's own resources (what `same-nb show` prints for a local run)
    assert {"same-nb.cpu_s", "same-nb.peak_rss_bytes", "same-nb.bytes_in", "same-nb.bytes_out"} <= set(metrics)
    assert metrics["same-nb.cpu_s"] > 0 and metrics["same-nb.peak_rss_bytes"] >= 0
    for s in result.pipeline.steps:
        assert (kfp_dir / s.name / "same_nb_notebook").read_text().startswith("<!DOCTYPE html>")
