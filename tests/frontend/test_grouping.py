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
                          (["skip", "after:prep", "step:use"], "print(m)"), ([], "k = m")])
    data["cells"].insert(2, {"cell_type": "raw", "id": "r1", "metadata": {"tags": ["step:raw_start"]},
                             "source": "raw text"})
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(data))
    g = group(path)
    assert g.parameters_cell.number == 1
    assert layout(g) == {"prep": [2], "raw_start": [], "use": [5]}
    assert after(g)["use"] == [("prep", 4)]


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
    ([(["step:a", "block:b"], "x = 1")], "more than one step tag: step:a, block:b", 1),
    ([(["step:a"], "x = 1"), (["after:"], "y = 1")], "tag 'after:' names no step", 2),
    ([(["parameters"], "a = 1"), (["pipeline-parameters"], "b = 1")],
     "two parameters cells: cell 1 and cell 2", 2),
    ([(["step:a"], "x = 1"), (["pipeline-metrics"], "x\nprint(x)")], "each line must name variables", 2),
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
