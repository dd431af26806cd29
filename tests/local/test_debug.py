"""`same_nb.load_step` and `%same_nb load` in a real kernel, over real runs of `debug_division`: its
step 'train-model' divides by `scale`, which 'prepare' computes as 0 when `offset` is 1. Loading the
failed step into a fresh kernel and running the step's own cell raises the same exception; the bound
values hash as recorded; a corrupt or missing artifact, an unknown step, a run of another notebook
and a cached step each get their own answer."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from same_nb.local.progress import make_progress
from same_nb.service import debug_step_code, run_notebook
from same_nb.store.database import open_store

pytestmark = pytest.mark.slow
STEP = "train-model"


@pytest.fixture(scope="module")
def runs(module_notebook_copy):
    nb = module_notebook_copy("debug_division")
    quiet = make_progress(quiet=True)
    ok = run_notebook(nb, params=[("offset", "0")], progress=quiet)
    failed = run_notebook(nb, params=[("offset", "1")], progress=quiet)
    cached = run_notebook(nb, params=[("offset", "0")], progress=quiet)
    assert ok.ok and not failed.ok and failed.states[STEP].status == "failed"
    assert cached.states[STEP].status == "cached"
    with open_store(notebook_dir=nb.parent) as store:
        recorded = {r: store.get_run(r) for r in (ok.run_id, failed.run_id, cached.run_id)}
    return {"nb": nb, "ok": ok.run_id, "failed": failed.run_id, "cached": cached.run_id, "recorded": recorded}


def _step_record(run: dict, step: str = STEP) -> dict:
    return next(s for s in run["steps"] if s["step_name"] == step)


def _cell(nb: Path, step: str = STEP) -> str:
    cells = json.loads(nb.read_text())["cells"]
    return "".join(next(c for c in cells if f"step:{step}" in c["metadata"].get("tags", []))["source"])


class Kernel:
    """A fresh python3 kernel in ``cwd``; ``run(code)`` -> (stdout text, error content or None)."""

    def __init__(self, cwd: Path):
        from jupyter_client.manager import start_new_kernel

        env = {k: v for k, v in os.environ.items() if k not in ("SAME_NB_DB", "JPY_SESSION_NAME")}
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)

    def run(self, code: str) -> tuple[str, dict | None]:
        out, error = [], []

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                error.append(content)

        self.kc.execute_interactive(code, timeout=120, output_hook=hook)
        return "".join(out), (error[0] if error else None)

    def value(self, expression: str):
        text, error = self.run(f"import json as _j; print(_j.dumps({expression}))")
        assert error is None, error
        return json.loads(text.strip().splitlines()[-1])

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(runs):
    k = Kernel(runs["nb"].parent)
    yield k
    k.close()


def test_the_failed_step_loads_into_a_fresh_kernel_and_fails_the_same_way(runs, kernel):
    printed, error = kernel.run("import same_nb\nsame_nb.load_step('train-model')")
    assert error is None, error
    failed = runs["failed"]
    assert f"loaded step 'train-model' of run {failed} (failed; the latest run where it failed)" in printed
    assert "ZeroDivisionError: float division by zero" in printed
    for line in ("frame ", "scale ", "offset "):
        assert any(row.strip().startswith(line) for row in printed.splitlines()), (line, printed)
    assert "random generators continued where the step started: numpy.random" in printed
    assert "pd.set_option('display.max_rows', 7)" in printed
    assert kernel.value("[scale, offset, list(frame['x'])]") == [0, 1, [1.0, 2.0, 3.0]]
    assert kernel.value("pd.get_option('display.max_rows')") == 7     # the configuration 'prepare' set

    _, error = kernel.run(_cell(runs["nb"]))
    recorded = _step_record(runs["recorded"][failed])["error"]
    assert (error["ename"], error["evalue"]) == (recorded["ename"], recorded["evalue"]) \
        == ("ZeroDivisionError", "float division by zero")
    # numpy's generator continued where 'prepare' left it, as in a top-to-bottom run
    np.random.seed(3)
    assert kernel.value("noise") == np.random.rand()


def test_bound_values_hash_as_the_run_recorded_them(runs, kernel, tmp_path):
    _, error = kernel.run(f"import same_nb\nsame_nb.load_step('train-model', run={runs['failed']})")
    assert error is None, error
    recorded = {i["name"]: i["sha256"] for i in _step_record(runs["recorded"][runs["failed"]])["inputs"]}
    assert {"frame", "scale", "_same_nb_rng_numpy"} <= set(recorded)
    hashes = kernel.value("{n: __import__('same_nb.runtime', fromlist=['x']).dump_value(n, globals()[n], "
                          f"__import__('same_nb.runtime', fromlist=['x']).ArtifactStore({str(tmp_path)!r}))['sha256'] "
                          "for n in ('frame', 'scale')}")
    assert hashes == {n: recorded[n] for n in ("frame", "scale")}
    assert kernel.value("'_same_nb_rng_numpy' in globals() or '_same_nb_state' in globals()") is False


def test_the_magic_loads_a_given_run_and_the_step_then_succeeds(runs, kernel):
    _, error = kernel.run("%load_ext same_nb")
    assert error is None, error
    printed, error = kernel.run(f"%same_nb load {STEP} --run {runs['ok']}")
    assert error is None, error
    assert f"loaded step 'train-model' of run {runs['ok']} (success; as asked)" in printed
    assert kernel.value("[scale, offset]") == [3, 0]
    _, error = kernel.run(_cell(runs["nb"]))
    assert error is None and kernel.value("ratio") == 2.0
    printed, error = kernel.run("%same_nb unload x")
    assert error is None and "usage: %same_nb load STEP [--run N] [--notebook PATH]" in printed
    printed, error = kernel.run("%same_nb load train-model --run twelve")
    assert error is None and "invalid int value: 'twelve'" in printed
    _, error = kernel.run(f"%same_nb load {STEP} --run {runs['ok']} --notebook other.ipynb")
    assert error["ename"] == "StepLoadError" and "pass --notebook '" in error["evalue"], error   # its options
    assert "notebook=" not in error["evalue"] and len(error["traceback"]) == 1, error


def test_a_cached_step_loads_what_the_run_that_computed_it_saw(runs, kernel):
    printed, error = kernel.run(f"import same_nb\nsame_nb.load_step('train-model', run={runs['cached']})")
    assert error is None, error
    assert f"it was cached in run {runs['cached']}: its inputs are those run {runs['ok']} computed it from" in printed
    assert kernel.value("[scale, offset]") == [3, 0]


def test_refusals_are_one_line_each_and_bind_nothing(runs, kernel):
    cases = [
        ("same_nb.load_step('nope')", "has no step 'nope' in its latest run"),
        (f"same_nb.load_step(\"x'); import os #\", run={runs['ok']})",
         f"run {runs['ok']} has no step \"x'); import os #\"; its steps are "
         "'prepare', 'train-model', 'report'"),
        ("same_nb.load_step('train-model', run=999)", "there is no run 999"),
        (f"same_nb.load_step('train-model', run={runs['ok']}, notebook='other.ipynb')", "is a run of"),
        (f"same_nb.load_step('report', run={runs['failed']})",
         f"step 'report' never started in run {runs['failed']} (skipped"),
        ("same_nb.load_step('prepare')", "step 'prepare' has not failed in any recorded run"),
        ("same_nb.load_step('prepare', notebook='/nowhere/nb.ipynb')", "no run store at /nowhere/.same/same.db"),
    ]
    kernel.run("import same_nb")
    for code, words in cases:
        _, error = kernel.run(code)
        assert error is not None and error["ename"] == "StepLoadError", (code, error)
        assert words in error["evalue"], (code, error["evalue"])
        assert len(error["traceback"]) == 1, error["traceback"]          # the message, no same-nb internals
    assert kernel.value("'scale' in globals()") is False


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_artifact_names_the_variable_the_run_and_the_path(runs, kernel, damage):
    failed = runs["failed"]
    scale = next(i for i in _step_record(runs["recorded"][failed])["inputs"] if i["name"] == "scale")
    path = Path(scale["location"])
    saved = path.with_name("saved")
    shutil.copyfile(path, saved)
    try:
        if damage == "corrupt":
            path.write_bytes(b"not the value")
        else:
            path.unlink()
        _, error = kernel.run(f"import same_nb\nsame_nb.load_step('train-model', run={failed})")
    finally:
        os.replace(saved, path)
    assert error["ename"] == "StepLoadError" and len(error["traceback"]) == 1
    what = "is corrupt" if damage == "corrupt" else "is missing"
    assert error["evalue"].startswith(f"input 'scale' of step 'train-model' in run {failed} {what}")
    assert f"{path} (sha256 {scale['sha256']})" in error["evalue"]
    assert kernel.value("'frame' in globals() or 'offset' in globals()") is False


def test_the_sidebar_code_runs_in_the_notebook_kernel(runs, kernel):
    with open_store(notebook_dir=runs["nb"].parent) as store:
        answer = debug_step_code(store, runs["recorded"][runs["failed"]], STEP)
    assert answer["code"] == (f"import same_nb; same_nb.load_step('train-model', run={runs['failed']}, "
                              "notebook='debug_division.ipynb')")
    assert answer["inputs"] == ["frame", "scale"] and answer["params"] == ["offset"]
    printed, error = kernel.run(answer["code"])
    assert error is None and f"of run {runs['failed']} (failed; as asked)" in printed


def test_outside_ipython_the_callers_globals_get_inputs_parameters_and_replayed_imports(tmp_path):
    """A plain Python script: no kernel, so the values land in the calling module's globals."""
    import subprocess
    import sys

    from same_nb.bundle.writer import _prologue
    from same_nb.frontend.ir import Replay, Step
    from same_nb.runtime import ArtifactStore, dump_value

    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    artifacts = ArtifactStore(tmp_path / ".same" / "artifacts")
    rows = dump_value("rows", [3, 1, 2], artifacts)
    rows.update(location=str(artifacts.path(rows["sha256"])), role="variable")
    replay = Replay(channel="os.environ", statement="os.environ['SAME_NB_DEBUG_CHECK'] = 'set in load'", step="load",
                    imports=["import os"], cell=1, line=2)
    executed = tmp_path / "train.ipynb"
    executed.write_text(json.dumps({"cells": [{"id": "same-nb-prologue", "cell_type": "code",
                                               "source": _prologue(Step(name="train", replay=[replay]))}]}))
    with open_store(notebook_dir=tmp_path) as store:
        run = store.create_run(notebook_path=nb, notebook_sha256="0" * 64, pipeline_name="p", params={"k": 2},
                               target="local", run_dir_root=tmp_path / ".same" / "runs")
        ids = store.add_step_runs(run, ["load", "train"])
        for name, status, inputs, outputs in (("load", "success", [], [rows]), ("train", "failed", [rows], [])):
            store.start_step(ids[name], cache_key=name, cache_info={"params": {"k": 2} if name == "train" else {}},
                             reason="", code_sha256=None)
            store.finish_step(ids[name], status=status, inputs=inputs, outputs=outputs, log_path=None,
                              executed_notebook=str(executed) if name == "train" else None)
    (tmp_path / "script.py").write_text("import same_nb\nsame_nb.load_step('train')\n"
                                        "print(repr((rows, k, os.environ['SAME_NB_DEBUG_CHECK'])))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SAME_NB_DB", "JPY_SESSION_NAME")}
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "([3, 1, 2], 2, 'set in load')"
    assert f"loaded step 'train' of run {run} (failed; the latest run where it failed) of nb.ipynb" in done.stdout
    assert "replayed as the step started: import os; os.environ['SAME_NB_DEBUG_CHECK'] = 'set in load'" in done.stdout


def test_the_notebook_is_the_given_one_else_the_kernels_else_the_only_one_with_runs(tmp_path, monkeypatch):
    from same_nb.local.debug import choose_notebook
    from same_nb.store.stepload import StepLoadError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for name in ("a.ipynb", "b.ipynb", "scratch.ipynb"):
        (tmp_path / name).write_text("{}")
    with open_store(notebook_dir=tmp_path) as store:
        def record(name: str) -> int:
            return store.create_run(notebook_path=tmp_path / name, notebook_sha256="0" * 64, pipeline_name="p",
                                    params={}, target="local", run_dir_root=tmp_path / ".same" / "runs")

        with pytest.raises(StepLoadError, match="no runs of notebooks in"):
            choose_notebook(store, {}, None)
        record("a.ipynb")
        assert choose_notebook(store, {}, None) == tmp_path / "a.ipynb"
        # The kernel's notebook counts only when it has runs: a scratch notebook defers to the folder's.
        assert choose_notebook(store, {"__session__": str(tmp_path / "scratch.ipynb")}, None) == tmp_path / "a.ipynb"
        record("b.ipynb")
        with pytest.raises(StepLoadError, match=r"runs of several notebooks are recorded here \(a.ipynb, b.ipynb\)"):
            choose_notebook(store, {}, None)
        assert choose_notebook(store, {"__session__": "b.ipynb"}, None) == tmp_path / "b.ipynb"   # relative too
        monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "a.ipynb"))
        assert choose_notebook(store, {}, None) == tmp_path / "a.ipynb"
        monkeypatch.delenv("JPY_SESSION_NAME")
        assert choose_notebook(store, {}, 7) is None           # a given run names its own notebook
