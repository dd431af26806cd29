"""The step's figures measured in a real process: its own peak and CPU, children that ran and exited
during the step, live children, and a forked process that must not inherit its parent's peak."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from same_nb.runtime import resources

pytestmark = pytest.mark.skipif(not resources.supported(), reason="needs Linux /proc")
MB = 1_000_000


def _spin(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_peak_and_cpu_are_the_steps_not_what_came_before():
    before = bytearray(b"x") * (150 * MB)          # an earlier peak (kernel start-up, warm-up imports)
    del before
    resources.begin()
    block = bytearray(b"x") * (60 * MB)
    del block
    _spin(0.3)
    figures = resources.end()
    assert 58 * MB <= figures["peak_rss_bytes"] < 100 * MB
    assert 0.3 <= figures["cpu_s"] < 1.0


def test_children_count_whether_they_exited_or_still_run():
    """In a fresh process, as a kernel: RUSAGE_CHILDREN's peak is the largest child ever reaped, so a
    process that reaped bigger children before the step (as pytest has) cannot tell about smaller ones."""
    hog = ("b = bytearray(b'x') * {mb} * 1000000\nimport time\nt = time.process_time()\n"
           "while time.process_time() - t < 0.3: pass\n{rest}")
    exits, stays = hog.format(mb=80, rest=""), hog.format(mb=40, rest="print('ok', flush=True)\ntime.sleep(30)")
    step = f"""
import json, subprocess, sys
from same_nb.runtime import resources
resources.begin()
subprocess.run([sys.executable, "-c", {exits!r}], check=True)   # reaped before the end
live = subprocess.Popen([sys.executable, "-c", {stays!r}], stdout=subprocess.PIPE)
assert live.stdout.readline().strip() == b"ok"
figures = resources.end()
live.kill()
live.wait()
print(json.dumps(figures))
"""
    done = subprocess.run([sys.executable, "-c", step], capture_output=True, text=True, timeout=60, check=True)
    figures = json.loads(done.stdout)
    assert figures["peak_rss_bytes"] >= 120 * MB
    assert figures["cpu_s"] >= 0.6


def test_a_forked_child_does_not_report_what_its_parent_holds():
    """As a kernel forked from the zygote: the modules the zygote preloaded for the whole pipeline are
    resident in the child (shared copy-on-write) but are not the step's memory."""
    preloaded = bytearray(b"x") * (200 * MB)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: one small step
        try:
            assert resources._status_kb("self", "VmRSS") > 200_000       # the parent's pages are resident
            resources.begin()
            # Above glibc's largest mmap threshold (32 MB), so fresh pages whatever this process freed before.
            small = bytearray(b"x") * (40 * MB)
            del small
            os.write(write, json.dumps(resources.end()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        figures = json.loads(pipe.read())
    os.waitpid(pid, 0)
    del preloaded
    assert 39 * MB <= figures["peak_rss_bytes"] < 90 * MB        # not the parent's 200 MB


def test_no_figures_without_a_start():
    resources._started = None
    assert resources.end() == {"peak_rss_bytes": None, "cpu_s": None}


def test_pod_metrics_name_every_figure_and_sum_distinct_artifacts():
    resources.begin()
    result = {"resources": resources.end(), "outputs": {"model": {"sha256": "b" * 64, "size": 300}},
              "files": [{"direction": "in", "sha256": "c" * 64, "size": 50},
                        {"direction": "out", "sha256": "d" * 64, "size": 7}],
              "datasets": []}
    inputs = [{"sha256": "a" * 64, "size": 1000}, {"sha256": "a" * 64, "size": 1000}]
    metrics = resources.pod_metrics(result, inputs)
    assert metrics["same-nb.bytes_in"] == 1050 and metrics["same-nb.bytes_out"] == 307
    assert set(metrics) == {f"same-nb.{k}" for k in ("peak_rss_bytes", "cpu_s", "bytes_in", "bytes_out",
                                                     "task_peak_rss_bytes", "task_cpu_s")}
    assert metrics["same-nb.task_peak_rss_bytes"] > 10 * MB
