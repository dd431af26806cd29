"""same_nb.frontend.sweep: the grid of a parameter sweep, typed like -p values, checked with specific
errors, and which steps a swept parameter reaches (the rest are shared by every grid point)."""
from __future__ import annotations

import pytest

from same_nb.errors import SameError
from same_nb.frontend.pipeline import build_pipeline
from same_nb.frontend.sweep import load_grid_file, parse_sweep_args, plan_sweep, point_label, split_values
from tests.conftest import NOTEBOOKS


@pytest.fixture(scope="module")
def pipeline():
    return build_pipeline(NOTEBOOKS / "sweep_grid.ipynb")


def plan(pipeline, *items, fixed=()):
    return plan_sweep(pipeline, parse_sweep_args(list(items)), set(fixed))


def test_grid_is_every_combination_typed_like_the_defaults(pipeline):
    p = plan(pipeline, "scale=1,2.5,3", "seed=0,1")
    assert p.axes == [("scale", [1.0, 2.5, 3.0]), ("seed", [0, 1])]
    assert p.points == [{"scale": 1.0, "seed": 0}, {"scale": 1.0, "seed": 1}, {"scale": 2.5, "seed": 0},
                        {"scale": 2.5, "seed": 1}, {"scale": 3.0, "seed": 0}, {"scale": 3.0, "seed": 1}]
    assert all(isinstance(pt["scale"], float) and type(pt["seed"]) is int for pt in p.points)


def test_steps_no_swept_parameter_reaches_are_shared(pipeline):
    p = plan(pipeline, "scale=1,2")
    assert p.shared_steps == ["load", "count"]
    assert p.swept_steps == ["fit", "score"]          # score reads no parameter, but reads fit's output
    assert p.unused == []


def test_a_parameter_no_step_reads_is_reported(pipeline):
    p = plan(pipeline, "label=a,b")
    assert p.unused == ["label"] and p.swept_steps == []


def test_values_with_commas_inside_brackets_or_quotes_stay_whole():
    assert split_values("[1,2],[3]") == ["[1,2]", "[3]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert split_values("0.1,0.5") == ["0.1", "0.5"]


@pytest.mark.parametrize("items, fixed, message", [
    (["alpha=1,2"], (), "unknown parameter 'alpha' (from --sweep alpha); valid parameters: scale, seed, label"),
    (["seed=0,1", "seed=2"], (), "parameter 'seed' is swept twice (--sweep seed and --sweep seed)"),
    (["seed="], (), "parameter 'seed' (from --sweep seed) has no values to sweep"),
    (["seed=0,x"], (), "parameter 'seed' expects int (default 0), got 'x' from --sweep seed"),
    (["seed=1,1"], (), "parameter 'seed' (from --sweep seed) lists the value 1 twice"),
    (["seed=0,1"], ("seed",), "parameter 'seed' is both fixed with -p/--params and swept (--sweep seed)"),
    (["scale=nan"], (), "parameter 'scale'"),
])
def test_bad_grids_give_specific_errors(pipeline, items, fixed, message):
    with pytest.raises(SameError) as err:
        plan(pipeline, *items, fixed=fixed)
    assert message in str(err.value)


def test_a_sweep_option_without_a_name_is_refused():
    with pytest.raises(SameError, match=r"--sweep '0.1,0.5': write NAME=VALUE1,VALUE2"):
        parse_sweep_args(["0.1,0.5"])


def test_too_large_a_grid_is_refused(pipeline):
    with pytest.raises(SameError, match="the grid has 1,100 points; at most 1000"):
        plan(pipeline, "seed=" + ",".join(map(str, range(100))), "scale=" + ",".join(map(str, range(11))))


def test_grid_file_values_are_typed_and_checked(pipeline, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("scale: [1, 0.5]\nseed: [3]\n")
    p = plan_sweep(pipeline, load_grid_file(grid))
    assert p.points == [{"scale": 1.0, "seed": 3}, {"scale": 0.5, "seed": 3}]
    grid.write_text("seed: 3\n")
    with pytest.raises(SameError, match="parameter 'seed' must map to a list of values, got 3"):
        load_grid_file(grid)
    grid.write_text("seed: []\n")
    with pytest.raises(SameError, match=r"parameter 'seed' \(from grid.yaml: seed\) has no values"):
        plan_sweep(pipeline, load_grid_file(grid))
    grid.write_text("- 1\n- 2\n")
    with pytest.raises(SameError, match="a parameter grid maps each parameter to a list") as err:
        load_grid_file(grid)
    assert err.value.path == str(grid)
    with pytest.raises(SameError, match="no such parameter grid file"):
        load_grid_file(tmp_path / "missing.yaml")


def test_hostile_values_are_labelled_as_json():
    assert point_label({"label": "a\nb'\"", "x": [1, "y"]}) == 'label="a\\nb\'\\"" x=[1, "y"]'
