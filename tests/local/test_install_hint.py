"""A step that imports a module the kernel lacks fails with the command that installs it, in the
stored error and on the command line; a missing submodule of an installed package gets no hint."""
from __future__ import annotations

import contextlib
import io

import pytest

from same_nb.cli import main
from same_nb.local.execute import with_install_hint
from same_nb.store.database import open_store

pytestmark = pytest.mark.slow


def test_missing_module_names_its_distribution_in_the_store_and_on_the_command_line(notebook_copy):
    nb = notebook_copy("missing_module")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["run", str(nb), "-q"])
    assert rc == 1
    with open_store(notebook_dir=nb.parent) as store:
        steps = {s["step_name"]: s for s in store.get_run(1)["steps"]}
    assert steps["parse"]["error"]["evalue"] == (
        "No module named 'Bio' — install it with: pip install biopython")       # import name ≠ distribution
    assert steps["nested"]["error"]["evalue"] == "No module named 'json.nope_not_a_module'"
    assert ("error: step parse failed at cell 2, line 1: ModuleNotFoundError: No module named 'Bio' — "
            "install it with: pip install biopython") in out.getvalue()


@pytest.mark.parametrize("ename, evalue, hint", [
    ("ModuleNotFoundError", "No module named 'sklearn'", "pip install scikit-learn"),
    ("ModuleNotFoundError", "No module named 'yaml'", "pip install PyYAML"),
    ("ModuleNotFoundError", "No module named 'polars'", "pip install polars"),      # not mapped: its own name
    ("ImportError", "No module named 'cv2'", "pip install opencv-python"),
    ("ImportError", "cannot import name 'nope' from 'json'", None),
    ("ValueError", "No module named 'sklearn'", None),
])
def test_install_hint_table(ename, evalue, hint):
    error = with_install_hint({"ename": ename, "evalue": evalue})
    assert error["evalue"] == (f"{evalue} — install it with: {hint}" if hint else evalue)
