"""An executed step notebook reads as the user's cells: every cell same-nb or papermill generated is
tagged `same-nb-generated` and collapsed, under a header naming the step."""
from __future__ import annotations

import json

import pytest

from same_nb.local.progress import make_progress
from same_nb.service import run_notebook

pytestmark = pytest.mark.slow


def test_generated_cells_of_an_executed_step_are_tagged_and_collapsed(notebook_copy):
    nb = notebook_copy("cached_metrics")
    before = nb.read_bytes()
    result = run_notebook(nb, progress=make_progress(quiet=True), params=[("C", "2.0")])
    assert result.ok
    executed = json.loads((result.run_dir / "steps" / "train.ipynb").read_text())
    cells = executed["cells"]
    generated = [c for c in cells if "same-nb-generated" in c["metadata"].get("tags", [])]
    assert [c.get("id") for c in generated if c["cell_type"] == "markdown"] == ["same-nb-header"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# Step `train`")
    code = [c for c in generated if c["cell_type"] == "code"]
    injected = [c for c in code if "injected-parameters" in c["metadata"]["tags"]]
    assert len(injected) == 1 and "C = 2.0" in "".join(injected[0]["source"])       # papermill's cell too
    assert {c.get("id") for c in code} >= {"same-nb-parameters", "same-nb-prologue", "same-nb-epilogue"}
    assert all(c["metadata"]["jupyter"]["source_hidden"] for c in code)
    user = [c for c in cells if c not in generated]
    assert ["".join(c["source"]).splitlines()[0] for c in user] == ["import same_nb"]
    assert "jupyter" not in user[0]["metadata"] and user[0]["outputs"]             # shown, with its output
    assert nb.read_bytes() == before
