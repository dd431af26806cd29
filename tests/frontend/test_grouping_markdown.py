"""Markdown cells go with the step they introduce: a run of them right before a step's first code
cell belongs to that step, not to the end of the previous one."""
from __future__ import annotations

from same_nb.frontend.grouping import Grouping, group_cells
from same_nb.frontend.notebook import load_notebook


def group(path) -> Grouping:
    return group_cells(load_notebook(path))


def layout(g: Grouping) -> dict[str, list[int]]:
    return {s.name: [c.number for c in s.cells] for s in g.steps}


def test_headings_before_a_step_start_open_that_step(write_notebook):
    g = group(write_notebook([
        (["md"], "# Load"), (["step:load"], "x = 1"), (["md"], "a note on load"), ([], "y = x + 1"),
        (["md"], "## Train"), (["md"], "We fit the model."), (["step:train"], "z = y * 2"),
        (["md"], "## Report"), (["step:report"], "print(z)"), (["md"], "The end.")]))
    assert layout(g) == {"load": [1, 2, 3, 4], "train": [5, 6, 7], "report": [8, 9, 10]}


def test_parameters_prelude_and_metrics_cells_end_a_heading_run(write_notebook):
    g = group(write_notebook([
        (["md"], "## Parameters"), (["parameters"], "n = 3"), (["step:a"], "x = n"),
        (["md"], "## Helpers"), (["imports"], "import math"), (["md"], "## Metrics"),
        (["pipeline-metrics"], "x"), (["step:b"], "y = math.floor(x)")]))
    assert layout(g) == {"a": [1, 3, 4, 6, 7], "b": [8]}      # heading of the metrics cell stays with it
    assert [c.number for c in g.prelude] == [5] and g.parameters_cell.number == 2
    assert g.metrics == ["x"]


def test_skipped_and_raw_cells_do_not_break_a_heading_run(write_notebook):
    path = write_notebook([(["step:a"], "x = 1"), (["md"], "## B"), (["skip"], "debug(x)"),
                           (["step:b"], "y = x")])
    assert layout(group(path)) == {"a": [1], "b": [2, 4]}


def test_markdown_after_a_step_and_before_plain_code_stays_in_place(write_notebook):
    path = write_notebook([(["step:a"], "x = 1"), (["md"], "## More"), ([], "x += 1"), (["step:b"], "y = x")])
    assert layout(group(path)) == {"a": [1, 2, 3], "b": [4]}


def test_a_cell_starting_several_steps_gets_the_heading_in_each(write_notebook):
    path = write_notebook([(["step:a"], "x = 1"), (["md"], "## Both"), (["step:b", "step:c"], "y = x")])
    assert layout(group(path)) == {"a": [1], "b": [2, 3], "c": [2, 3]}

