"""Issue #13 item 9: process state crosses Kubeflow pods as it crosses local kernels. A notebook with
two random-generator chains and replayed configuration (one reading a parameter) is compiled for
Kubeflow and run under kfp.local (every task a subprocess running the pod's component function and component
code, as in tests/kubeflow/test_kfp_local.py); the generator states travel as Dataset artifacts and
every step ends with the same values as a local run, which tests/runtime/test_state_end_to_end.py
holds equal to a top-to-bottom run."""
from __future__ import annotations

import hashlib
import json
import tempfile

import numpy as np
import pytest
import yaml

from same_nb.kubeflow.compiler import compile_kubeflow
from same_nb.kubeflow.component import SNAPSHOT_ENV
from same_nb.kubeflow.podenv import INSTALL_ENV
from same_nb.kubeflow.submit import pipeline_arguments, read_pipeline
from same_nb.runtime import ArtifactStore, load_value
from same_nb.service import run_notebook

from conftest import notebook_data

CELLS = [
    (["parameters"], "precision = 3"),
    (["step:setup"], "import numpy as np\nimport pandas as pd\nimport os\nnp.random.seed(42)\n"
                     "pd.set_option('display.precision', precision)\nos.environ['SAME_NB_KFP_MODE'] = 'fast'"),
    (["step:draw"], "import pandas as pd\nx = np.random.rand(3)\ntext = repr(pd.DataFrame({'v': [1/3, 2/3]}))"),
    (["step:more"], "import os\ny = np.random.rand(2)\nmode = os.environ.get('SAME_NB_KFP_MODE')"),
    (["step:other"], "import random\nrandom.seed(5)\nr1 = random.random()"),
    (["step:other2"], "import random\nr2 = random.random()"),
]


def _run_both(tmp_path, monkeypatch, cells: list, name: str):
    """Compile ``cells`` for Kubeflow, run it locally and under kfp.local; every step's snapshot must be
    byte-equal in both. Returns (compile result, {variable: value} from the pods)."""
    from kfp import local
    from kfp.components import load_component_from_file

    monkeypatch.delenv("SAME_NB_DB", raising=False)
    folder = tmp_path / "nb"
    folder.mkdir()
    notebook = folder / f"{name}.ipynb"
    notebook.write_text(json.dumps(notebook_data(cells), indent=1))
    result = compile_kubeflow(notebook, tmp_path / "kubeflow")

    local_run = run_notebook(notebook, snapshot=True, use_cache=False)
    assert local_run.ok, local_run.states

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv(INSTALL_ENV, "never")   # pins are what is installed here: see test_kfp_local
    monkeypatch.setenv(SNAPSHOT_ENV, str(tmp_path / "snapshots"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "outputs"),
               workspace_root=str(tmp_path / "workspace"))
    pipeline = load_component_from_file(str(result.pipeline_yaml))
    pipeline(**pipeline_arguments(read_pipeline(result.pipeline_yaml), {}))
    [kfp_dir] = (tmp_path / "outputs").glob(f"{result.name}-*")

    values = {}
    for step in result.pipeline.steps:
        local_result = json.loads((local_run.run_dir / "steps" / step.name / "result.json").read_text())
        kfp_result = json.loads((tmp_path / "snapshots" / step.name / "result.json").read_text())
        assert {n: r["sha256"] for n, r in kfp_result["snapshot"].items()} == \
            {n: r["sha256"] for n, r in local_result["snapshot"].items()}, step.name
        for variable in step.outputs:              # generator states included, as Dataset artifacts
            argument = variable.lstrip("_")
            produced = kfp_dir / step.name / argument
            assert hashlib.sha256(produced.read_bytes()).hexdigest() == local_result["outputs"][variable]["sha256"]
        store = ArtifactStore(tmp_path / "snapshots" / step.name / "artifacts")
        values.update({n: load_value(r, store) for n, r in kfp_result["snapshot"].items()})
    return result, values


@pytest.mark.slow
def test_state_channels_travel_as_artifacts_under_kfp_local(tmp_path, monkeypatch):
    result, values = _run_both(tmp_path, monkeypatch, CELLS, "state")
    spec = yaml.safe_load(result.pipeline_yaml.read_text())
    assert "same_nb_rng_numpy" in spec["components"]["comp-draw"]["outputDefinitions"]["artifacts"]
    assert "same_nb_rng_random" in spec["components"]["comp-other2"]["inputDefinitions"]["artifacts"]

    draws = np.random.RandomState(42).rand(5)
    np.testing.assert_array_equal(values["x"], draws[:3])
    np.testing.assert_array_equal(values["y"], draws[3:])
    assert values["mode"] == "fast" and "0.333" in values["text"] and "0.3333" not in values["text"]
    import random
    generator = random.Random(5)
    assert (values["r1"], values["r2"]) == (generator.random(), generator.random())


SHARED = [
    (["step:make"], "class C:\n    def __init__(self):\n        self.v = 1\n    def get(self):\n        return self.v\n"
                    "c = C()\ng = c.get\na = [1]\nb = a\nshared = [0]\npair = [shared, shared]"),
    (["step:use"], "c.v = 5\nsame = a is b\npair[0].append(1)\nn = len(shared)\ngot = g()"),
]


@pytest.mark.slow
def test_outputs_that_share_objects_arrive_as_one_graph_in_pods(tmp_path, monkeypatch):
    """Issue #13: `b = a`, `pair = [shared, shared]` and `g = c.get` travel as one group artifact, in a
    pod as in a local kernel: identity holds and a change through one name reaches the others."""
    result, values = _run_both(tmp_path, monkeypatch, SHARED, "shared")
    spec = yaml.safe_load(result.pipeline_yaml.read_text())
    assert {"a", "b", "c", "g", "pair", "shared"} <= set(spec["components"]["comp-use"]["inputDefinitions"]["artifacts"])
    assert (values["same"], values["n"], values["got"]) == (True, 2, 5)
