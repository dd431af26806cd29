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
