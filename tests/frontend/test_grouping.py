"""same_nb.frontend.grouping: cells to step drafts following the tag grammar."""
from __future__ import annotations

import json

import pytest

from same_nb.errors import SameError
from same_nb.frontend.grouping import Grouping, group_cells
from same_nb.frontend.notebook import load_notebook

from conftest import NOTEBOOKS, notebook_data


def group(path) -> Grouping:
    return group_cells(load_notebook(path))


def layout(g: Grouping) -> dict[str, list[int]]:
    return {s.name: [c.number for c in s.cells] for s in g.steps}


def after(g: Grouping) -> dict[str, list[tuple[str, int]]]:
    return {s.name: [(name, cell.number) for name, cell in s.after] for s in g.steps}


@pytest.mark.parametrize("fixture, expected", [
    ("tags_none", {"tags_none": [1, 2]}),
    ("tags_first_cell", {"load": [1], "total": [2]}),
    ("tags_code_before_first", {"load": [1, 2, 3, 4], "report": [5]}),   # markdown cell 2 kept in place
    ("tags_consecutive", {"a": [1], "b": [2], "c": [3]}),
    ("tags_skip", {"load": [1], "use": [3]}),
    ("tags_parameters", {"prep": [2], "label": [3]}),
    ("tags_other_ignored", {"load": [1, 2]}),
    ("same_conventions", {"same_step_0": [1], "same_step_1": [2], "same_step_2": [3]}),
    ("kale_conventions", {"load": [4], "scale": [5], "summarize": [7, 8]}),
    ("old_format_v3", {"one": [1], "two": [2]}),
])
def test_cells_belong_to_the_step_tag_before_them(fixture, expected):
    assert layout(group(NOTEBOOKS / f"{fixture}.ipynb")) == expected


def test_untagged_notebook_is_one_step_named_after_the_file(write_notebook):
    g = group(write_notebook([([], "a = 1"), (["md"], "text"), ([], "b = a")], name="My Analysis v2"))
    assert layout(g) == {"My_Analysis_v2": [1, 2, 3]}
    assert g.steps[0].first_cell is None


def test_parameters_prelude_and_metrics_cells():
    g = group(NOTEBOOKS / "kale_conventions.ipynb")
    assert g.parameters_cell.number == 3
    assert [c.number for c in g.prelude] == [1, 2]
    assert g.metrics == ["mean"]
    assert after(g) == {"load": [], "scale": [("load", 5)], "summarize": [("scale", 7)]}


def test_after_tag_is_recorded_with_its_cell():
    assert after(group(NOTEBOOKS / "tags_after.ipynb")) == {"write": [], "read": [("write", 2)]}


def test_unknown_tags_are_kept_and_reported_as_ignored():
    g = group(NOTEBOOKS / "tags_other_ignored.ipynb")
    assert g.steps[0].cells[0].tags == ["step:load", "hide-input", "injected-parameters"]
    assert [(c.number, t) for c, t in g.ignored_tags] == [
        (1, "hide-input"), (1, "injected-parameters"), (2, "remove-output")]


def test_a_skipped_cell_still_starts_its_step():
    # The step tag on a skipped cell is not dropped: the cells after it form that step.
    assert layout(group(NOTEBOOKS / "tags_skip_step.ipynb")) == {"load": [1], "debug": [3]}


def test_structure_tags_on_parameters_raw_and_skipped_cells_count(tmp_path):
    data = notebook_data([(["parameters", "step:prep"], "n = 1"), ([], "m = n"),
                          (["skip", "step:use"], "print(m)"), (["after:prep"], "k = m")])
    data["cells"].insert(2, {"cell_type": "raw", "id": "r1", "metadata": {"tags": ["step:raw_start"]},
                             "source": "raw text"})
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(data))
    g = group(path)
    assert g.parameters_cell.number == 1
    assert layout(g) == {"prep": [2], "raw_start": [], "use": [5]}
    assert after(g)["use"] == [("prep", 5)]


def test_after_before_the_first_step_applies_to_the_first_step(write_notebook):
    g = group(write_notebook([(["after:b"], "x = 1"), (["step:a"], "y = x"), (["step:b"], "z = 1")]))
    assert layout(g) == {"a": [1, 2], "b": [3]}
    assert after(g) == {"a": [("b", 1)], "b": []}


@pytest.mark.parametrize("cells, message, cell", [
    ([(["step:a"], "x = 1"), (["step:a"], "y = 1")],
     "duplicate step name 'a': cell 1 (id c1) and cell 2 (id c2) both start it", 2),
    ([(["block:a"], "x = 1"), (["step:a"], "y = 1")], "duplicate step name 'a'", 2),
    ([(["step:bad name"], "x = 1")], "invalid step name 'bad name'", 1),
    ([(["step:"], "x = 1")], "invalid step name ''", 1),
    ([(["block:a", "block: a"], "x = 1")], "tag 'block:a' appears twice on the cell", 1),
    ([(["block:a"], "x = 1"), (["block:b", "block:a"], "y = 1")], "duplicate step name 'a'", 2),
    ([(["step:a"], "x = 1"), (["prev:x:y"], "y = 1")], "tag 'prev:x:y' names an invalid step 'x:y'", 2),
    ([(["step:a"], "x = 1"), (["step:b", "prev:ghost"], "y = 1")],
     "tag 'prev:ghost' names a step that does not exist (steps: a, b)", 2),
    ([(["step:a"], "x = 1"), (["injected-parameters"], "y = f'{x}'")],
     "parameters cell: `f'{x}'` is not a literal", 2),
    ([(["step:a"], "x = 1"), (["after:"], "y = 1")], "tag 'after:' names no step", 2),
    ([(["parameters"], "a = 1"), (["pipeline-parameters"], "b = 1")],
     "two parameters cells: cell 1 and cell 2", 2),
    ([(["step:a"], "x = 1"), (["pipeline-metrics"], "x\nprint(x + 1)")], "each line must name variables", 2),
    ([(["step:a"], "x = 1"), (["pipeline-metrics"], "print(x, end='')")], "each line must name variables", 2),
    ([(["step:a"], "x = 1"), (["pipeline-metrics"], "x +")], "pipeline-metrics cell: syntax error", 2),
])
def test_structural_errors_name_the_cell(write_notebook, cells, message, cell):
    path = write_notebook(cells)
    with pytest.raises(SameError) as info:
        group(path)
    assert message in info.value.message
    assert (info.value.path, info.value.cell, info.value.cell_id) == (str(path), cell, f"c{cell}")


def test_duplicate_fixture_names_both_cells():
    with pytest.raises(SameError) as info:
        group(NOTEBOOKS / "error_duplicate_step.ipynb")
    assert "cell 1 (id c1) and cell 3 (id c3)" in str(info.value)


def test_invalid_step_name_fixture():
    with pytest.raises(SameError, match=r"invalid step name 'bad name!'"):
        group(NOTEBOOKS / "error_invalid_step_name.ipynb")


def test_metrics_cell_lists_names_and_tuples(write_notebook):
    g = group(write_notebook([(["step:a"], "acc, loss = 1, 2\nf1 = 3"),
                              (["pipeline-metrics"], "# reported\nacc, loss\nf1")]))
    assert g.metrics == ["acc", "loss", "f1"]


def test_kale_metrics_cell_prints_its_variables(write_notebook):
    # Kale's own syntax (its pipeline_parameters_and_metrics test notebook).
    g = group(write_notebook([(["step:a"], "d1 = 1\nd2 = 2\nsum_result = 3"),
                              (["pipeline-metrics"], "print(d1)\nprint(d2)\n\nprint(sum_result)")]))
    assert g.metrics == ["d1", "d2", "sum_result"]


def test_empty_block_tag_continues_the_current_step(write_notebook):
    # Kale's extension leaves `block:` on cells that continue a step (dog-breed.ipynb has twelve).
    g = group(write_notebook([(["block:train"], "x = 1"), (["block:"], "y = x"), (["block: "], "z = y"),
                              (["block:eval", "prev:train"], "print(z)")]))
    assert layout(g) == {"train": [1, 2, 3], "eval": [4]}
    assert after(g) == {"train": [], "eval": [("train", 4)]}


def test_empty_block_tag_before_any_step_joins_the_first_step(write_notebook):
    g = group(write_notebook([(["block:"], "x = 1"), (["block:a"], "y = x")]))
    assert layout(g) == {"a": [1, 2]}


def test_skip_cell_drops_its_other_tags(write_notebook):
    # dog-breed-katib.ipynb: a skipped cell inside step detect_dogs carries prev:detect_dogs.
    g = group(write_notebook([(["block:load"], "x = 1"), (["block:detect", "prev:load"], "y = x"),
                              (["skip", "prev:detect"], "print(y)"), (["skip", "pipeline-metrics"], "y"),
                              ([], "z = y")]))
    assert layout(g) == {"load": [1], "detect": [2, 5]}
    assert after(g) == {"load": [], "detect": [("load", 2)]}
    assert g.metrics == []
    assert [(c.number, t) for c, t in g.ignored_tags] == [(3, "prev:detect"), (4, "pipeline-metrics")]


def test_skip_cell_still_starts_the_step_it_names(write_notebook):
    g = group(write_notebook([(["step:a"], "x = 1"), (["skip", "step:b", "after:a"], "print(x)"), ([], "y = x")]))
    assert layout(g) == {"a": [1], "b": [3]}
    assert after(g) == {"a": [], "b": []}


def test_a_cell_with_two_block_tags_runs_in_both_steps(write_notebook):
    g = group(write_notebook([(["block:load"], "x = 1"), (["block:a", "block:b", "prev:load"], "import math"),
                              ([], "y = x")]))
    assert layout(g) == {"load": [1], "a": [2], "b": [2, 3]}     # the cells after it continue the last
    assert after(g) == {"load": [], "a": [("load", 2)], "b": [("load", 2)]}
    assert g.steps[1].first_cell is g.steps[2].first_cell


def test_papermill_injected_parameters_become_the_defaults(write_notebook):
    # papermill's binder/cli-simple/simple_output.ipynb: the notebook papermill ran with msg="Hello".
    path = write_notebook([(["parameters"], "msg = None\nn = 1"), (["injected-parameters"], '# Parameters\nmsg = "Hello"\n'),
                           ([], "print(msg)")])
    g = group(path)
    assert layout(g) == {"nb": [3]}
    assert g.parameters_cell.number == 1 and g.parameters_cell.id == "c1"
    assert g.parameters_cell.source == ('msg = None\nn = 1\n# injected-parameters (cell 2)\n'
                                       '# Parameters\nmsg = "Hello"\n')
    assert [c.number for c in g.injected_cells] == [2]
    from same_nb.frontend.params import parse_parameters
    params = parse_parameters(g.parameters_cell.source, path="nb", cell=1, cell_id="c1")
    assert [(p.name, p.default, p.type) for p in params] == [("msg", "Hello", "str"), ("n", 1, "int")]


def test_injected_parameters_without_a_parameters_cell_are_the_parameters(write_notebook):
    g = group(write_notebook([(["injected-parameters"], "msg = 'Hi'"), ([], "print(msg)")]))
    assert (g.parameters_cell.number, g.parameters_cell.source) == (1, "msg = 'Hi'\n")
    assert [c.number for c in g.steps[0].cells] == [2]


def test_injected_parameters_tag_on_a_step_cell_is_the_users_own(write_notebook):
    g = group(write_notebook([(["step:load", "injected-parameters"], "v = compute()")]))
    assert layout(g) == {"load": [1]} and g.parameters_cell is None
    assert [(c.number, t) for c, t in g.ignored_tags] == [(1, "injected-parameters")]


def test_cycle_message_names_the_tag_and_cell_behind_each_link(write_notebook):
    from same_nb.frontend.grouping import cycle_message
    from same_nb.frontend.ir import Edge

    g = group(write_notebook([(["step:a", "prev:c"], "a = 1"), (["step:b"], "b = a + 1"), (["step:c"], "c = b")]))
    edges = [Edge("a", "b", "data", names=["a"]), Edge("b", "c", "data", names=["b"]), Edge("c", "a", "after")]
    msg = cycle_message(["a", "b", "c", "a"], edges, g.steps)
    assert msg.startswith("the steps form a cycle: a → b → c → a; remove an after:/prev: tag on one of them (")
    assert "c → a: tag 'prev:c' on cell 1 (id c1)" in msg
    assert "a → b: b uses a from a" in msg and "b → c: c uses b from b" in msg


def test_imports_and_calls_in_a_parameters_cell_run_in_the_first_step(write_notebook):
    # papermill's binder/cli-simple/pm_example.ipynb and SAME's conda_notebooks/needs_conda.ipynb.
    g = group(write_notebook([(["parameters"], "import os\nimport papermill as pm\n\nbinder_dir = '..'\n"
                                               "same_import('six')"), (["step:a"], "print(binder_dir)")]))
    assert g.parameters_cell.source == "\n\n\nbinder_dir = '..'\n"            # lines keep their numbers
    code = g.steps[0].cells[0]
    assert (code.number, code.id, code.source) == (1, "c1", "import os\nimport papermill as pm\n\n\nsame_import('six')\n")
    assert layout(g) == {"a": [1, 2]}


def test_a_parameters_cell_of_assignments_is_not_split(write_notebook):
    g = group(write_notebook([(["parameters"], "a = 1  # one\nb: int = 2"), (["step:a"], "print(a)")]))
    assert g.parameters_cell.source == "a = 1  # one\nb: int = 2" and layout(g) == {"a": [2]}
    g = group(write_notebook([(["parameters"], "import os; a = 1"), (["step:a"], "print(a)")], name="semi"))
    assert g.parameters_cell.source == "import os; a = 1"                     # parse_parameters reports it
