"""The pod side runs its step notebook with the runtime's papermill engine (same_nb/runtime/notebook_engine.py),
as local runs do: the executed notebook is written at a bounded rate, not at every cell's start and end
(papermill's default, quadratic in cells), and still at once when a cell fails. Calls the component's
``_execute`` directly, without kfp.local."""
from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

import nbformat
import pytest

from same_nb.kubeflow import component
from same_nb.runtime import StepRuntimeError
from same_nb.runtime import notebook_engine as engine


@pytest.fixture
def counted_writes(monkeypatch):
    """Every write of the executed notebook by same-nb's manager (papermill's own final write aside)."""
    writes = SimpleNamespace(times=[])
    real = engine._write_atomically

    def counting(text, path):
        writes.times.append(time.monotonic())
        real(text, path)

    monkeypatch.setattr(engine, "_write_atomically", counting)
    # _execute sets these for the pod's process; keep them from leaking into the other tests
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.setitem(sys.modules, "rfc3987_syntax", sys.modules.get("rfc3987_syntax"))
    return writes


def step_notebook(path, sources):
    """A step notebook as the bundle writes one: a parameters cell, then cells that know their source cell."""
    cells = [nbformat.v4.new_code_cell("start = 0", metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(src, metadata={"same_nb": {"cell": n}}) for n, src in enumerate(sources, 1)]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                         "language": "python"}})
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_pod_writes_a_long_step_at_a_bounded_rate(tmp_path, counted_writes):
    cells = 300
    notebook = step_notebook(tmp_path / "big.ipynb", ["x = start"] + [f"x += {i}\nprint(x)" for i in range(1, cells)])
    executed = tmp_path / "out" / "big.ipynb"
    executed.parent.mkdir()
    started = time.monotonic()
    component._execute("big", notebook, executed, {"start": 0}, "python3", tmp_path)
    elapsed = time.monotonic() - started
    # papermill's default engine writes 2 * 300 times and never through the runtime's manager
    times = counted_writes.times
    assert 1 <= len(times) <= elapsed / engine.SAVE_INTERVAL + 2
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= engine.SAVE_INTERVAL * 0.99 for g in gaps), gaps
    nb = json.loads(executed.read_text(encoding="utf-8"))
    nbformat.validate(nbformat.from_dict(nb))                 # papermill's final, validated write
    mine = [c for c in nb["cells"] if c["metadata"].get("same_nb")]
    assert len(mine) == cells
    printed = ["".join("".join(o["text"]) for o in c["outputs"]) for c in mine[1:]]     # a print may arrive in parts
    assert printed == [f"{i * (i + 1) // 2}\n" for i in range(1, cells)]
    assert not list(executed.parent.glob("*.tmp"))            # atomic writes left nothing


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_pod_step_that_fails_names_the_cell_and_its_notebook_stops_there(tmp_path, counted_writes):
    sources = ["x = start"] + [f"x += {i}" for i in range(1, 150)] + ["raise ValueError('stop here')"]
    notebook = step_notebook(tmp_path / "big.ipynb", sources + [f"x += {i}" for i in range(151, 200)])
    executed = tmp_path / "out" / "big.ipynb"
    executed.parent.mkdir()
    with pytest.raises(StepRuntimeError, match="step 'big' failed in cell 151 of the source notebook: "
                                               "ValueError: stop here"):
        component._execute("big", notebook, executed, {"start": 0}, "python3", tmp_path)
    assert counted_writes.times                               # the runtime's engine ran the notebook
    status = {c["metadata"]["same_nb"]["cell"]: c["metadata"]["papermill"]["status"]
              for c in json.loads(executed.read_text(encoding="utf-8"))["cells"] if c["metadata"].get("same_nb")}
    assert status[150] == "completed" and status[151] == "failed" and status[152] == "pending"
