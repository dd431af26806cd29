"""Run-time verification: a step that changes an input later steps read, without the plan carrying it,
or two unordered steps sharing a file, fail the run loudly; the next run carries the learned effect and
computes what a top-to-bottom run computes."""
from __future__ import annotations

import subprocess
import sys

from same_nb.service import inspect_notebook, run_notebook
from same_nb.store.learned import load_learned

OPAQUE = [(["step:make"], "a = [1, 2]"),
          # A library call the analysis cannot see into changes `a` in place.
          (["step:alias"], "import operator\noperator.methodcaller('append', 3)(a)"),
          (["step:use"], "n = len(a)\nopen('n.txt', 'w').write(str(n))")]


def test_unplanned_mutation_fails_then_is_carried(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook(OPAQUE)
    first = run_notebook(nb, jobs=2, use_cache=False)
    assert first.status == "failed"
    error = first.states["alias"].error
    assert error["ename"] == "UnplannedEffectError" and "'a'" in error["evalue"] and "'use'" in error["evalue"]
    assert load_learned(nb) == [{"kind": "mutation", "step": "alias", "name": "a", "how": "in place",
                                 "run": first.run_id}]
    insp = inspect_notebook(nb)
    assert {i.name: i.producer for i in insp.pipeline.step("use").inputs} == {"a": "alias"}
    assert any(d.code == "learned-effect" and f"run {first.run_id}" in d.message for d in insp.pipeline.diagnostics)
    second = run_notebook(nb, jobs=2)
    assert second.ok
    assert (nb.parent / "n.txt").read_text() == "3"           # as top to bottom: the appended list


def test_unordered_steps_sharing_a_file_fail_then_are_ordered(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([(["step:w"], "name = 'f' + '.txt'\nopen(name, 'w').write('new')"),
                         (["step:r"], "import time\ntime.sleep(0.3)\ntext = open('f' + '.txt').read()"),
                         (["step:show"], "open('seen.txt', 'w').write(text)")])
    (nb.parent / "f.txt").write_text("stale")
    first = run_notebook(nb, jobs=2, use_cache=False)
    assert first.status == "failed"
    failed = [s for s in first.states.values() if s.status == "failed"]
    assert len(failed) == 1 and failed[0].error["ename"] == "FileOrderError"
    assert "f.txt" in failed[0].error["evalue"] and "after:w" in failed[0].error["evalue"]
    assert [(e["before"], e["after"]) for e in load_learned(nb)] == [("w", "r")]
    (nb.parent / "f.txt").write_text("stale")
    second = run_notebook(nb, jobs=2, use_cache=False)
    assert second.ok and (nb.parent / "seen.txt").read_text() == "new"
    forgot = subprocess.run([sys.executable, "-m", "same_nb.cli", "forget", str(nb)], capture_output=True,
                            text=True)
    assert forgot.returncode == 0 and "1 learned effect forgotten" in forgot.stdout
    assert load_learned(nb) == []


def test_reading_a_file_a_parallel_step_writes_is_never_silent(write_notebook, monkeypatch):
    """Whatever the timing, a run where a reader and a writer of one file are unordered does not end in
    success (with -j 1 the order is fixed by the topological order, which keeps notebook order)."""
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    # The path is computed at run time, so only the run-time check can see the shared file.
    nb = write_notebook([(["step:w"], "import os, time\ntime.sleep(0.3)\n"
                                      "open(os.environ.get('NO_SUCH_VAR', 'g') + '.txt', 'w').write('new')"),
                         (["step:r"], "import os\ntext = open(os.environ.get('NO_SUCH_VAR', 'g') + '.txt').read()")])
    (nb.parent / "g.txt").write_text("stale")
    assert run_notebook(nb, jobs=2, use_cache=False).status == "failed"


def test_a_missing_output_names_the_binding_cell_line_and_why(write_notebook, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    nb = write_notebook([(["parameters"], "flag = False"),
                         (["step:make"], "import os\nif flag:\n    x = 2"),
                         (["step:use"], "y = x + 1")])
    run = run_notebook(nb, jobs=1, use_cache=False)
    error = run.states["make"].error
    assert run.status == "failed" and error["ename"] == "MissingOutputError"
    assert "'x' is bound at cell 2, line 3 (inside an `if` whose branch did not run)" in error["evalue"]
