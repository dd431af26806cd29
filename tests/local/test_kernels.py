"""Kernels of a finished run leave nothing behind in the process that ran it (the Jupyter server, a
notebook calling the service, the test process): no client threads piling up."""
from __future__ import annotations

import threading
import time

import pytest

from same_nb.local.progress import make_progress
from same_nb.service import run_notebook

pytestmark = pytest.mark.slow


def _client_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if type(t).__module__.startswith("jupyter_client")]


def test_runs_leave_no_kernel_client_threads(notebook_copy):
    nb = notebook_copy("branching")
    before = set(_client_threads())
    for _ in range(3):
        result = run_notebook(nb, use_cache=False, progress=make_progress(quiet=True))
        assert result.ok
        deadline = time.monotonic() + 10          # kernels are shut down on daemon threads
        while set(_client_threads()) - before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(_client_threads()) - before == set()
        # Each leaked client held a heartbeat thread and its sockets: in a server running many pipelines
        # they piled up until zmq aborted the process.


@pytest.mark.parametrize("kernel", ["fork", "fresh"])
def test_every_output_of_every_step_is_kept(kernel, tmp_path):
    """A step's client is ready without jupyter_client's 0.2 s IOPub quiet period (kernels.wait_ready):
    the first output of the first cell, right after the kernel became ready, is still captured."""
    import nbformat

    from same_nb.local.forked import fork_supported

    if kernel == "fork" and not fork_supported():
        pytest.skip("fork server needs fork() and /proc")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x0 = 0\nprint('first s0', flush=True)", metadata={"tags": ["step:s0"]})]
    nb.cells += [nbformat.v4.new_code_cell(f"print('first s{i}', flush=True)\nx{i} = x{i - 1} + 1\n"
                                           f"from IPython.display import display\ndisplay({{'step': {i}}})",
                                           metadata={"tags": [f"step:s{i}"]}) for i in range(1, 12)]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    result = run_notebook(path, kernel=kernel, use_cache=False, progress=make_progress(quiet=True))
    assert result.ok
    for i in range(12):
        executed = nbformat.read(result.run_dir / "steps" / f"s{i}.ipynb", as_version=4)
        texts = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        assert f"first s{i}\n" in texts, (i, texts)
        if i:
            shown = [o["data"]["text/plain"] for c in executed.cells for o in c.get("outputs", [])
                     if o.get("output_type") == "display_data"]
            assert shown == [f"{{'step': {i}}}"], (i, shown)
