"""Compiled specs stay small: nothing large travels in pipeline.yaml or a container's command line.

KFP keeps the pipeline spec in Kubernetes objects (256 KB–1.5 MiB ceilings) and Linux refuses one
argument over 131,072 bytes. The budgets: pipeline.yaml ≤ 20 KB per step, every container argument
≤ 32 KB, checked on a generated 20-step notebook importing pandas, scikit-learn and matplotlib.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from same_nb.kubeflow import compiler
from same_nb.kubeflow.compiler import BUDGET_ARGUMENT, BUDGET_PER_STEP, compile_kubeflow

from conftest import notebook_data

STEPS = 20


def _twenty_steps(path: Path) -> Path:
    cells = [(["parameters"], "rows = 50\nseed = 0")]
    cells.append((["step:step00"], "import numpy as np\nimport pandas as pd\n"
                                   "df = pd.DataFrame({'x': np.arange(rows, dtype=float)})"))
    for i in range(1, STEPS):
        body = [f"import pandas as pd\nimport matplotlib\nfrom sklearn.preprocessing import StandardScaler\n"
                f"df = df.assign(c{i}=df['x'] * {i})\nscaled{i} = StandardScaler().fit_transform(df[['x']])"]
        cells.append(([f"step:step{i:02d}"], body[0]))
    path.write_text(json.dumps(notebook_data(cells)))
    return path


@pytest.fixture(scope="module")
def twenty(tmp_path_factory):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    folder = tmp_path_factory.mktemp("budgets")
    notebook = _twenty_steps(folder / "twenty.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        return notebook, compile_kubeflow(notebook, folder / "out")


def test_twenty_steps_stay_within_the_budgets(twenty):
    _, result = twenty
    assert len(result.pipeline.steps) == STEPS
    text = result.pipeline_yaml.read_text()
    assert len(text.encode()) / STEPS <= BUDGET_PER_STEP, result.figures
    spec = yaml.safe_load(text)
    arguments = [a for e in spec["deploymentSpec"]["executors"].values() if "container" in e
                 for a in e["container"]["command"] + e["container"].get("args", [])]
    assert max(len(a.encode()) for a in arguments) <= BUDGET_ARGUMENT
    assert result.figures["max_argument"] == max(len(a.encode()) for a in arguments)
    assert result.figures["bytes_per_step"] == len(text.encode()) // STEPS
    assert not [w for w in result.warnings if "(budget" in w]
    # the locks are in the bundle, not the spec
    assert "--hash=sha256" not in text and "pandas==" not in text


def test_compile_warns_when_a_budget_would_be_exceeded(twenty, monkeypatch, tmp_path):
    notebook, result = twenty
    monkeypatch.setattr(compiler, "BUDGET_PER_STEP", result.figures["bytes_per_step"] - 1)
    monkeypatch.setattr(compiler, "BUDGET_ARGUMENT", result.figures["max_argument"] - 1)
    again = compile_kubeflow(notebook, tmp_path / "out")
    budget = [w for w in again.warnings if "(budget" in w]
    assert len(budget) == 2
    assert f"{again.figures['bytes_per_step']:,} bytes per step" in budget[0]
    assert f"{again.figures['max_argument']:,} bytes" in budget[1]
