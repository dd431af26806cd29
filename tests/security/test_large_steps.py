"""Large steps (issue 15, item 7): papermill's default writes the whole executed notebook at every cell
start and end, so a step's time grew with the square of its cells (1,000 cells: 212 s; 20,000 never
finished). same-nb writes it at a bounded rate. These tests hold the behaviour, not a timing: the
timeouts are generous ceilings far above what a linear run needs (bench/large_steps.py measures).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest

CELLS = 1000


def _notebook(cells: int) -> dict:
    sources = ["x = 0"] + [f"x = x + {i}\nprint(x)" for i in range(1, cells)]
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {"tags": ["step:big"] if i == 0 else []},
                       "source": s, "outputs": [], "execution_count": None} for i, s in enumerate(sources)]}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_1000_cell_step_completes_with_every_output(tmp_path):
    nb = tmp_path / "big.ipynb"
    nb.write_text(json.dumps(_notebook(CELLS)))
    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}
    proc = subprocess.run([sys.executable, "-m", "same_nb.cli", "run", "--no-cache", "big.ipynb"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    executed = tmp_path / ".same" / "runs" / "1" / "steps" / "big.ipynb"
    node = nbformat.read(executed, as_version=4)
    nbformat.validate(node)
    mine = [c for c in node.cells if c.metadata.get("same_nb")]
    assert [c.metadata.same_nb.cell for c in mine] == list(range(1, CELLS + 1))
    assert all(c.metadata.papermill.status == "completed" for c in mine)
    printed = ["".join(o.text for o in c.outputs) for c in mine[1:]]     # one print may arrive in parts
    assert printed == [f"{i * (i + 1) // 2}\n" for i in range(1, CELLS)]
    assert not list(executed.parent.glob("*.tmp"))
