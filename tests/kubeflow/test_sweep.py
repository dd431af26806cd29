"""A parameter sweep compiled for Kubeflow: nested dsl.ParallelFor loops around the steps a swept
parameter reaches, the other steps once before them; run under kfp.local (SubprocessRunner), which
proves the graph and the values each grid point gets, not that a pod's lock is complete (test_pods.py)."""
from __future__ import annotations

import ast
import json
import shutil

import pytest
import yaml

from same_nb.cli import main
from same_nb.errors import SameError
from same_nb.frontend.sweep import parse_sweep_args
from same_nb.service import compile_for_kubeflow
from tests.conftest import NOTEBOOKS
from tests.kubeflow.test_kfp_local import _kfp_leftovers, kfp_env  # noqa: F401  (a fixture)

HOSTILE = "it's \"x\"\n'); import os #"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kfp-sweep")
    shutil.copyfile(NOTEBOOKS / "sweep_grid.ipynb", folder / "sweep_grid.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SAME_NB_DB", raising=False)
        yield compile_for_kubeflow(folder / "sweep_grid.ipynb", folder / "out",
                                   sweep_axes=parse_sweep_args(["scale=1,2,3", "seed=0,1"]))


def pipeline_body(result) -> ast.FunctionDef:
    tree = ast.parse(result.pipeline_py.read_text())
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "notebook_pipeline")


def test_swept_steps_sit_in_nested_parallel_for_loops_and_shared_ones_before(compiled):
    body = pipeline_body(compiled)
    assert [a.arg for a in body.args.args] == ["same_nb_bundle_uri", "label"]   # the grid sets scale and seed
    outer = [ast.unparse(s) for s in body.body if not isinstance(s, ast.With)]
    assert any(line.startswith("load_task = load(") for line in outer)
    assert any(line.startswith("count_task = count(") for line in outer)
    [loop] = [s for s in body.body if isinstance(s, ast.With)]
    assert ast.unparse(loop.items[0]) == "dsl.ParallelFor(items=[1.0, 2.0, 3.0]) as scale_item"
    [inner] = [s for s in loop.body if isinstance(s, ast.With)]
    assert ast.unparse(inner.items[0]) == "dsl.ParallelFor(items=[0, 1]) as seed_item"
    looped = [ast.unparse(s) for s in inner.body]
    assert any("fit(" in line and "scale=scale_item" in line and "seed=seed_item" in line for line in looped)
    assert any(line.startswith("score_task = score(") for line in looped)
    spec = next(yaml.safe_load_all(compiled.pipeline_yaml.read_text()))
    root_tasks = spec["root"]["dag"]["tasks"]
    assert {"load", "count"} <= set(root_tasks) and not {"fit", "score"} & set(root_tasks)
    loops = [t for t in root_tasks.values() if "parameterIterator" in t]
    assert len(loops) == 1


def test_hostile_swept_values_reach_pipeline_py_only_as_literals(tmp_path):
    """`name` also is an attribute of kfp's loop argument: one loop per parameter over plain values
    never sets attributes named after parameters."""
    nb = tmp_path / "tags_parameters.ipynb"
    shutil.copyfile(NOTEBOOKS / "tags_parameters.ipynb", nb)
    values = ["plain", HOSTILE]
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"name": values, "flags": [[1, 2], [3, "x'y"]]}, sort_keys=False))
    from same_nb.frontend.sweep import load_grid_file

    result = compile_for_kubeflow(nb, tmp_path / "out", sweep_axes=load_grid_file(grid))
    body = pipeline_body(result)
    loops = []
    node = body
    while any(isinstance(s, ast.With) for s in node.body):
        node = next(s for s in node.body if isinstance(s, ast.With))
        loops.append(ast.literal_eval(node.items[0].context_expr.keywords[0].value))
    assert loops == [values, ["[1, 2]", "[3, \"x'y\"]"]]   # lists travel as Python-literal text, as parameters do
    assert "import os" not in "".join(ast.unparse(s) for s in body.body if not isinstance(s, ast.Expr)).replace(
        repr(HOSTILE), "")


def test_a_sweep_no_step_reads_is_refused(tmp_path):
    nb = tmp_path / "sweep_grid.ipynb"
    shutil.copyfile(NOTEBOOKS / "sweep_grid.ipynb", nb)
    with pytest.raises(SameError, match=r"no step reads the swept parameters \(label\)"):
        compile_for_kubeflow(nb, tmp_path / "out", sweep_axes=parse_sweep_args(["label=a,b"]))


def test_compile_sweep_needs_the_kubeflow_target(tmp_path, capsys):
    nb = tmp_path / "sweep_grid.ipynb"
    shutil.copyfile(NOTEBOOKS / "sweep_grid.ipynb", nb)
    assert main(["compile", str(nb), "--sweep", "seed=0,1"]) == 1
    assert "a sweep compiles for --target kubeflow" in capsys.readouterr().err


def test_parallelism_limits_each_loop(tmp_path):
    nb = tmp_path / "sweep_grid.ipynb"
    shutil.copyfile(NOTEBOOKS / "sweep_grid.ipynb", nb)
    result = compile_for_kubeflow(nb, tmp_path / "out", sweep_axes=parse_sweep_args(["scale=1,2", "seed=0,1"]),
                                  sweep_parallelism=2)
    text = result.pipeline_py.read_text()
    assert "ParallelFor(items=[1.0, 2.0], parallelism=2) as scale_item" in text
    assert "ParallelFor(items=[0, 1], parallelism=2) as seed_item" in text
    with pytest.raises(SameError, match="--parallelism must be a positive integer, got 0"):
        compile_for_kubeflow(nb, tmp_path / "out", sweep_axes=parse_sweep_args(["seed=0,1"]), sweep_parallelism=0)


@pytest.mark.slow
def test_sweep_runs_under_kfp_local_with_shared_steps_once(compiled, kfp_env):  # noqa: F811
    """Each loop iteration has its own output folder there (<loop>-iteration-<i>/<inner loop>-iteration-<j>/<task>),
    so each grid point's executed notebook and metrics can be read back."""
    from kfp.components import load_component_from_file

    root, _ = kfp_env
    load_component_from_file(str(compiled.pipeline_yaml))()
    [kfp_dir] = (root / "outputs").glob(f"{compiled.name}-*")
    pages: dict[str, int] = {}
    for page in kfp_dir.rglob("same_nb_notebook"):
        pages[page.parent.name] = pages.get(page.parent.name, 0) + 1
    assert pages == {"load": 1, "count": 1, "fit": 6, "score": 6}
    assert {p.parent.name for p in kfp_dir.glob("*/same_nb_notebook")} == {"load", "count"}   # outside the loops
    losses = {}
    for output in kfp_dir.glob("for-loop-*-iteration-*/for-loop-*-iteration-*/score/executor_output.json"):
        i, j = (int(part.rsplit("-", 1)[1]) for part in output.parts[-4:-2])
        losses[i, j] = json.loads(output.read_text())["artifacts"]["same_nb_metrics"]["artifacts"][0]["metadata"]["loss"]
    assert losses == {(i, j): scale * 2 + seed for i, scale in enumerate((1.0, 2.0, 3.0)) for j, seed in enumerate((0, 1))}
