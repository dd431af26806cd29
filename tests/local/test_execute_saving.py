"""How a step's executed notebook is written while it runs (same_nb/runtime/notebook_engine.py, the
papermill engine of local runs and Kubeflow pods): at a bounded rate instead of at every cell start
and end (papermill's default, quadratic in cells), always at the start and the end, and on failure,
so a failed step still shows where it stopped."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import nbformat
import pytest

from same_nb.local.progress import make_progress
from same_nb.runtime import notebook_engine as engine
from same_nb.service import run_notebook


def run(notebook, **kwargs):
    return run_notebook(notebook, progress=make_progress(quiet=True), **kwargs)


@pytest.fixture
def counted_writes(monkeypatch):
    """Every write of an executed notebook by same-nb's manager (papermill's own final write aside):
    ``.times`` (monotonic) and ``.texts``."""
    writes = SimpleNamespace(times=[], texts=[])
    real = engine._write_atomically

    def counting(text, path):
        writes.times.append(time.monotonic())
        writes.texts.append(text)
        real(text, path)

    monkeypatch.setattr(engine, "_write_atomically", counting)
    return writes


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_long_step_is_written_at_most_once_a_second_not_at_every_cell(write_notebook, counted_writes,
                                                                       monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    cells = 300
    nb = write_notebook([(["step:big"], "x = 0")] + [([], f"x += {i}\nprint(x)") for i in range(1, cells)])
    started = time.monotonic()
    result = run(nb, use_cache=False)
    elapsed = time.monotonic() - started
    assert result.ok
    # papermill alone writes 2 * 300 times; ours: the start, then at most one a second.
    times = counted_writes.times
    assert 1 <= len(times) <= elapsed / engine.SAVE_INTERVAL + 2
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= engine.SAVE_INTERVAL * 0.99 for g in gaps), gaps
    executed = json.loads(result.states["big"].executed.read_text())
    nbformat.validate(nbformat.from_dict(executed))           # papermill's final, validated write
    mine = [c for c in executed["cells"] if c["metadata"].get("same_nb")]
    printed = ["".join("".join(o["text"]) for o in c["outputs"]) for c in mine[1:]]     # a print may arrive in parts
    assert printed == [f"{i * (i + 1) // 2}\n" for i in range(1, cells)]
    assert not list(result.states["big"].executed.parent.glob("*.tmp"))      # atomic writes left nothing


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_long_cell_that_prints_is_saved_while_it_runs(write_notebook, counted_writes, monkeypatch):
    """papermill's autosave during a cell's output, at our rate: the live view follows a long cell."""
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([(["step:long"], "import time\nfor i in range(10):\n    print(f'tick {i}', flush=True)\n"
                                         "    time.sleep(0.4)")])
    result = run(nb, use_cache=False)
    assert result.ok
    assert any("tick 2" in text and "tick 9" not in text for text in counted_writes.texts)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_failing_cell_in_a_long_step_is_where_the_executed_notebook_stops(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    body = [([], f"x += {i}") for i in range(1, 150)] + [([], "raise ValueError('stop here')")]
    body += [([], f"x += {i}") for i in range(150, 200)]
    nb = write_notebook([(["step:big"], "x = 0")] + body)
    result = run(nb, use_cache=False)
    err = result.states["big"].error
    assert (err["ename"], err["evalue"], err["cell"]) == ("ValueError", "stop here", 151)
    cells = json.loads(result.states["big"].executed.read_text())["cells"]
    status = {c["metadata"]["same_nb"]["cell"]: c["metadata"]["papermill"]["status"]
              for c in cells if c["metadata"].get("same_nb")}
    assert status[150] == "completed" and status[151] == "failed" and status[152] == "pending"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_timeout_writes_the_notebook_at_once_marking_the_running_cell(write_notebook, counted_writes,
                                                                          monkeypatch):
    """papermill writes nothing itself when the kernel times out or dies: our manager must, even
    inside the one-second window (the previous cells finished milliseconds before)."""
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    monkeypatch.setattr(engine, "SAVE_INTERVAL", 3600.0)       # only the forced writes happen
    cells = [(["step:slow"], "x = 0")] + [([], f"x += {i}\nprint(x)") for i in range(1, 50)]
    nb = write_notebook(cells + [([], "import time\ntime.sleep(60)"), ([], "y = x")])
    result = run(nb, use_cache=False, timeout=2)
    err = result.states["slow"].error
    assert (err["ename"], err["cell"]) == ("CellTimeoutError", 51)
    assert len(counted_writes.times) == 2                              # the start and the failure
    executed = json.loads(result.states["slow"].executed.read_text())["cells"]
    mine = {c["metadata"]["same_nb"]["cell"]: c for c in executed if c["metadata"].get("same_nb")}
    assert "".join("".join(o["text"]) for o in mine[50]["outputs"]) == f"{49 * 50 // 2}\n"
    assert mine[51]["execution_count"] and mine[52]["execution_count"] is None
    assert (mine[50]["metadata"]["papermill"]["status"], mine[51]["metadata"]["papermill"]["status"],
            mine[52]["metadata"]["papermill"]["status"]) == ("completed", "failed", "pending")


def test_the_rate_also_bounds_the_share_of_time_spent_writing(monkeypatch, tmp_path):
    """A write that takes long (a huge notebook) pushes the next one SAVE_SHARE times as far away, so
    writing never costs more than about a tenth of the run however many cells there are."""
    clock = [100.0]
    monkeypatch.setattr(engine.time, "monotonic", lambda: clock[0])

    def slow_write(text, path):
        clock[0] += 0.5                      # each write "takes" half a second

    monkeypatch.setattr(engine, "_write_atomically", slow_write)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")], metadata={"papermill": {}})
    manager = engine.register().manager_class(nb, output_path=str(tmp_path / "out.ipynb"), progress_bar=False)
    manager.notebook_start()
    assert manager.writes == 1                                  # always at the start
    assert manager.next_write == pytest.approx(clock[0] + engine.SAVE_SHARE * 0.5)
    clock[0] += 4.9
    manager.cell_start(nb.cells[0])
    assert manager.writes == 1                                  # 4.9 s passed, but not 10 x 0.5 s
    clock[0] += 0.2
    manager.cell_complete(nb.cells[0])
    assert manager.writes == 2
    manager.cell_start(nb.cells[0])
    manager.finish(write=True)                                  # a failure: written at once
    assert manager.writes == 3
    manager.finish(write=False)                                 # success: papermill writes the end itself
    assert manager.writes == 3


def test_intermediate_copies_are_byte_identical_to_nbformat(tmp_path):
    """The cheap serializer (no deep copy, no validation) writes what nbformat writes."""
    nb = nbformat.v4.new_notebook(metadata={"orig_nbformat": 3, "papermill": {"parameters": {}}})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title\nline two\n", attachments={"a.png": {"image/png": "AAA="}}),
        nbformat.v4.new_code_cell("x = 1\nprint(x)\n", execution_count=1, outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="1\n2\n"),
            nbformat.v4.new_output("display_data", data={"text/plain": "a\nb", "image/svg+xml": "<svg>\n</svg>",
                                                         "application/json": {"k": "v\nw"},
                                                         "image/png": "iVBOR\nw0="}),
            nbformat.v4.new_output("execute_result", data={"text/html": "<b>\n</b>"}, execution_count=1),
            nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["a\nb", "c"]),
        ]),
        nbformat.v4.new_raw_cell("raw\ntext", metadata={"trusted": True, "tags": ["t"]}),
        nbformat.v4.new_code_cell("é = 'ü'", metadata={"trusted": False}),
    ]
    assert engine._notebook_text(nb) == nbformat.v4.nbjson.writes(nb)
    assert nb.metadata["orig_nbformat"] == 3                  # the notebook itself is left alone
    assert nb.cells[2].metadata["trusted"] is True
