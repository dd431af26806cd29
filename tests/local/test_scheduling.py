"""Scheduling with more steps than kernels: a step that becomes ready always gets a kernel, whatever
--jobs is and however many kernels are warming for later steps; sys.exit(0) ends the notebook there."""
from __future__ import annotations

import pytest

from same_nb.service import run_notebook

CHAIN_AND_ONE = [(["step:s1"], "a = 1"), (["step:s2"], "b = a + 1"), (["step:s3"], "c = b + 1"),
                 (["step:s4"], "d = c + 1"), (["step:s5"], "e = 5")]


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_an_independent_last_step_gets_a_kernel(write_notebook, monkeypatch, jobs):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    run = run_notebook(write_notebook(CHAIN_AND_ONE), jobs=jobs, use_cache=False)
    assert run.ok, {n: s.error for n, s in run.states.items() if s.error}
    assert {s.status for s in run.states.values()} == {"success"}


def test_sys_exit_zero_ends_the_notebook_like_papermill(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([(["step:a"], "x = 1\nimport sys\nsys.exit(0)"), (["step:b"], "y = x + 1"),
                         (["step:c"], "z = 3")])
    run = run_notebook(nb, jobs=1)
    assert run.ok
    assert run.states["a"].status == "success" and "sys.exit(0)" in run.states["a"].reason
    assert run.states["b"].status == run.states["c"].status == "skipped"
    again = run_notebook(nb, jobs=1)              # the stopped step saved nothing: never a cache hit for b
    assert again.ok and again.states["b"].status == "skipped"


def test_sys_exit_one_fails_the_step(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    run = run_notebook(write_notebook([(["step:a"], "import sys\nsys.exit(1)"), (["step:b"], "y = 2")]), jobs=1)
    assert run.status == "failed" and run.states["a"].error["ename"] == "SystemExit"
