"""`same-nb run`, `runs` and `show` as a user calls them: exit codes, messages, Ctrl-C and kill -9."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from same_nb.cli import main

pytestmark = pytest.mark.slow


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def runs_json(folder: Path) -> list[dict]:
    rc, out, _ = cli("runs", "--dir", folder, "--json")
    assert rc == 0
    return json.loads(out)["runs"]


def show_json(folder: Path, run_id: int) -> dict:
    rc, out, _ = cli("show", run_id, "--dir", folder, "--json")
    assert rc == 0
    return json.loads(out)


@pytest.fixture(scope="module")
def history(module_notebook_copy):
    """One folder: branching run twice (-p, then --params file), and failing_step once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "200")                # rich tables unwrapped, whatever the terminal
        nb = module_notebook_copy("branching")
        folder = nb.parent
        failing = folder / "failing_step.ipynb"
        failing.write_text((Path(__file__).parent / "notebooks" / "failing_step.ipynb").read_text())
        (folder / "params.yaml").write_text("n: 5\n")
        first = cli("run", nb, "-p", "n", "4", "-j", "2", "-q")
        second = cli("run", nb, "--params", folder / "params.yaml")
        failed = cli("run", failing, "-q")
        yield folder, first, second, failed


def test_run_exits_0_and_prints_the_summary(history):
    folder, (rc, out, err), _, _ = history
    assert rc == 0, err
    for step in ("load", "left", "right", "join"):
        assert step in out
    assert "Run 1 success" in out
    assert "running" not in out                          # -q: the summary only
    assert show_json(folder, 1)["params"] == {"n": 4}


def test_params_file_sets_values(history):
    folder, _, (rc, out, err), _ = history
    assert rc == 0, err
    assert show_json(folder, 2)["params"] == {"n": 5}
    assert "load: running (param n 4 → 5)" in out        # progress lines without -q
    assert "join: success" in out


def test_failed_run_exits_1_and_names_step_cell_line_and_exception(history):
    folder, _, _, (rc, out, err) = history
    assert rc == 1
    assert "error: step boom failed at cell 2, line 2: ValueError: bad total 6" in out
    assert f"executed notebook: {folder / '.same' / 'runs' / '3' / 'steps' / 'boom.ipynb'}" in out
    assert "Run 3 failed" in out
    assert "Traceback (most recent call last)" not in err


def test_runs_lists_every_run_as_table_and_json(history):
    folder = history[0]
    runs = runs_json(folder)
    assert [(r["id"], r["status"]) for r in runs] == [(3, "failed"), (2, "success"), (1, "success")]
    assert runs[0]["step_counts"] == {"success": 2, "failed": 1, "skipped": 1}
    rc, out, _ = cli("runs", "--dir", folder)
    assert rc == 0
    lines = {line.split()[1]: line for line in out.splitlines() if line.split()[1:2] in (["1"], ["2"], ["3"])}
    assert set(lines) == {"1", "2", "3"}
    assert "failed" in lines["3"] and "failing-step" in lines["3"] and "success" in lines["1"]


def test_show_gives_steps_durations_artifacts_and_errors(history):
    folder = history[0]
    run = show_json(folder, 3)
    steps = {s["step_name"]: s for s in run["steps"]}
    assert {n: s["status"] for n, s in steps.items()} == {
        "load": "success", "boom": "failed", "after_boom": "skipped", "independent": "success"}
    assert steps["load"]["duration_s"] > 0
    assert [o["name"] for o in steps["load"]["outputs"]] == ["values"]
    assert steps["boom"]["error"]["ename"] == "ValueError"
    rc, out, _ = cli("show", 3, "--dir", folder)
    assert rc == 0
    assert "Run 3 of failing-step: failed" in out
    assert f"values {steps['load']['outputs'][0]['sha256'][:10]}" in out
    assert "error in boom (cell 2, line 2): ValueError: bad total 6" in out


def test_step_times_split_kernel_wait_from_compute_and_agree_across_views(history):
    from same_nb.local.progress import step_time_text

    folder, (_, summary, _), (_, live, _), _ = history
    for run_id, printed in ((1, summary), (2, live)):
        steps = show_json(folder, run_id)["steps"]
        _, shown, _ = cli("show", run_id, "--dir", folder)
        for s in steps:
            if s["status"] != "success":
                continue
            assert 0 < s["compute_s"] <= s["duration_s"]
            assert s["kernel_wait_s"] is not None and 0 <= s["kernel_wait_s"] <= s["duration_s"]
            assert s["compute_s"] + s["kernel_wait_s"] <= s["duration_s"]
            figure = step_time_text(s["duration_s"], s["compute_s"], s["kernel_wait_s"])
            assert f"│ {figure}" in shown, shown                        # same-nb show
            if run_id == 1:                                           # the end-of-run summary
                assert any(line.split()[:2] == [s["step_name"], "success"] and f"  {figure}  " in line
                           for line in printed.splitlines()), printed
            else:                                                     # the live lines
                assert f"{s['step_name']}: success ({figure})" in printed, printed


def test_runs_show_trace_and_compare_find_the_store_from_a_notebook_path(history, tmp_path, monkeypatch):
    folder = history[0]
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    monkeypatch.chdir(tmp_path)                             # somewhere without a store
    nb = folder / "branching.ipynb"
    rc, out, err = cli("runs", nb, "--json")
    assert rc == 0, err
    assert [r["id"] for r in json.loads(out)["runs"]] == [2, 1]       # that notebook's runs only
    assert json.loads(out)["total"] == 2
    rc, out, err = cli("runs", "--dir", folder / "failing_step.ipynb", "--json")
    assert rc == 0 and [r["id"] for r in json.loads(out)["runs"]] == [3], err
    rc, out, err = cli("show", 1, "--notebook", nb, "--json")
    assert rc == 0 and json.loads(out)["id"] == 1, err
    rc, out, err = cli("compare", 1, 2, "--notebook", nb)
    assert rc == 0 and "run 1 → run 2" in out, err
    rc, out, err = cli("compare", 1, 2, 1, "--notebook", nb)
    assert rc == 0 and out.startswith("runs 1 | 2 | 1"), err
    rc, out, err = cli("compare", 1, "--notebook", nb)
    assert (rc, out) == (1, "") and "compare needs at least two runs (got 1)" in err
    sha = show_json(folder, 1)["steps"][0]["outputs"][0]["sha256"]
    rc, out, err = cli("trace", sha[:12], "--notebook", nb, "--json")
    assert rc == 0 and json.loads(out)["producer"]["run_id"] == 1, err
    rc, out, err = cli("runs")
    assert rc == 1 and "pass the notebook (--notebook NB) or its folder (--dir DIR)" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = cli("compare", 1, 2, "--dir", empty)         # the folder was named: no hint to name it
    assert rc == 1 and err == f"error: no runs are recorded in {empty} (no .same/same.db): run a notebook " \
                              f"there first (`same-nb run NB`)\n"
    for args in (["runs", tmp_path / "nope.ipynb"], ["show", 1, "--notebook", tmp_path / "nope.ipynb"]):
        rc, out, err = cli(*args)
        assert (rc, out) == (1, "") and err == f"error: {tmp_path / 'nope.ipynb'}: no such notebook\n"


def test_run_prints_the_analysis_warnings_before_running(notebook_copy):
    nb = notebook_copy("undefined_name")
    rc, out, err = cli("run", nb, "-q")
    assert rc == 1                                          # and then the NameError it warned about
    assert err.splitlines()[0] == ("warning: [a] cell 1 (id c1), line 1: 'mystery' is not defined anywhere "
                                   "in the notebook, nor a parameter or builtin")
    assert "NameError: name 'mystery' is not defined" in out


@pytest.fixture(scope="module")
def metric_runs(module_notebook_copy):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "200")
        nb = module_notebook_copy("cached_metrics")
        runs = [cli("run", nb, "-q") for _ in range(2)]
        assert [rc for rc, _, _ in runs] == [0, 0], runs
        yield nb, [cli("show", 1, "--notebook", nb), cli("show", 2, "--notebook", nb),
                   cli("runs", nb, "--metrics"), cli("runs", nb, "--json")]


def test_show_prints_each_steps_metrics_rounded(metric_runs):
    _, (first, second, _, _) = metric_runs
    for rc, out, err in (first, second):
        assert rc == 0, err
        rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│ ")
                and line.split("│")[1].strip()}
        assert "score 0.6" in rows["train"] and "reported 1.2" in rows["report"]
        assert "loss 0.3" in out and "0.30000000000000004" not in out
    assert "cached" in second[1] and "(cache)" not in second[1]       # said once


def test_runs_tables_round_floats_and_json_carries_metrics_and_labels(metric_runs):
    _, (_, _, (rc, table, err), (_, listed, _)) = metric_runs
    assert rc == 0, err
    assert "0.30000000000000004" not in table and " 0.3 " in table
    runs = json.loads(listed)["runs"]
    assert [r["metrics"] for r in runs] == [{"train.score": 0.6, "train.loss": 0.1 + 0.2,
                                             "report.reported": 1.2}] * 2
    assert all(r["name"] is None and r["note"] is None for r in runs)


def test_show_of_a_missing_run_is_a_clear_error(history):
    folder = history[0]
    rc, out, err = cli("show", 99, "--dir", folder)
    assert (rc, out) == (1, "")
    assert err.strip() == "error: there is no run 99 in this store (see `same-nb runs`)"


@pytest.mark.parametrize("args, message", [
    (["-p", "n", "four"], "parameter 'n' expects int (default 6), got 'four' from -p n"),
    (["-p", "m", "1"], "unknown parameter 'm' (from -p m); valid parameters: n"),
    (["--params", "missing.yaml"], "cannot read parameters"),
    (["--params", "list.yaml"], "the parameters file must map names to values"),
    (["-j", "0"], "--jobs must be at least 1"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds"),
    (["--resume", "99"], "there is no run 99 to resume"),
])
def test_bad_input_exits_1_with_a_message_and_no_traceback(history, args, message):
    folder = history[0]
    (folder / "list.yaml").write_text("- 1\n")
    rc, out, err = cli("run", folder / "branching.ipynb", *[a if not a.endswith(".yaml") else folder / a
                                                           for a in args])
    assert rc == 1
    assert message in err
    assert "Traceback" not in err + out


def test_missing_notebook_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SAME_NB_DB", raising=False)
    rc, _, err = cli("run", tmp_path / "nope.ipynb")
    assert rc == 1 and "no such notebook" in err
    assert not (tmp_path / ".same").exists()


# -- interrupting a run ---------------------------------------------------------------------------

def _start(nb: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "SAME_NB_DB"}
    # The tree under test, whichever copy of same-nb happens to be installed.
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    # A session of its own, like a terminal's foreground job: Ctrl-C signals the whole group.
    return subprocess.Popen([sys.executable, "-m", "same_nb.cli", "run", nb.name], cwd=nb.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _wait_for_step(proc: subprocess.Popen, pid_file: Path) -> int:
    """The kernel pid the `wait` step writes when it starts."""
    deadline = time.time() + 90
    while not (pid_file.exists() and pid_file.read_text()):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the step never started: {proc.communicate()[0]}")
        time.sleep(0.05)
    return int(pid_file.read_text())


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder``: the kernels a run started there."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if os.readlink(proc / "cwd") == str(folder):
                    found.append(int(proc.name))
    return found


def _socket_dir(pid: int) -> str | None:
    """The private folder of a kernel's sockets and connection file (from its `-f` argument), which
    nobody removes when same-nb is killed."""
    with contextlib.suppress(OSError, ValueError):
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        folder = Path(args[args.index(b"-f") + 1].decode()).parent
        if folder.name.startswith("same-nb-"):
            return str(folder)
    return None


def _gone_within(folder: Path, seconds: float) -> list[int]:
    deadline = time.time() + seconds
    while (left := [p for p in _processes_in(folder) if _alive(p)]) and time.time() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc to find kernel processes")
def test_ctrl_c_cancels_the_run_and_stops_its_kernels(notebook_copy):
    nb = notebook_copy("wait_for_file")
    proc = _start(nb)
    kernel = _wait_for_step(proc, nb.parent / "wait.pid")
    os.killpg(proc.pid, signal.SIGINT)                   # what Ctrl-C in a terminal sends
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    run = runs_json(nb.parent)[0]
    assert run["status"] == "cancelled"
    # At once a line saying what happens, none of the kernels' or papermill's noise, then how to go on.
    after = out[out.index("wait: running"):].splitlines()[1:]
    assert after == ["stopping kernels…",
                     f"run {run['id']} cancelled; resume with `same-nb run {nb.name} --resume {run['id']}`"], out
    assert {s["step_name"]: s["status"] for s in show_json(nb.parent, run["id"])["steps"]} == {
        "first": "success", "wait": "cancelled", "last": "cancelled"}
    assert not _alive(kernel)
    assert _gone_within(nb.parent, 5) == []

    (nb.parent / "go.txt").write_text("")                 # the command it printed resumes the run
    rc, out, err = cli("run", nb, "--resume", run["id"], "-q")
    assert rc == 0, out + err
    why = {s["step_name"]: s["status"] for s in show_json(nb.parent, run["id"] + 1)["steps"]}
    assert why == {"first": "cached", "wait": "success", "last": "success"}


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc to find kernel processes")
def test_killed_run_shows_as_interrupted_and_resumes(notebook_copy, request):
    nb = notebook_copy("wait_for_file")
    proc = _start(nb)
    kernel = _wait_for_step(proc, nb.parent / "wait.pid")
    leftovers = [folder for pid in _processes_in(nb.parent) if (folder := _socket_dir(pid))]
    proc.kill()
    proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.kill(kernel, signal.SIGKILL)                   # the orphaned step kernel, and only it
    request.addfinalizer(lambda: [shutil.rmtree(f, ignore_errors=True) for f in leftovers])
    run = runs_json(nb.parent)[0]
    assert run["status"] == "interrupted"
    steps = {s["step_name"]: s["status"] for s in show_json(nb.parent, run["id"])["steps"]}
    assert steps == {"first": "success", "wait": "interrupted", "last": "interrupted"}
    assert _gone_within(nb.parent, 10) == []              # warm kernels exit when their parent dies

    (nb.parent / "go.txt").write_text("")
    rc, out, err = cli("run", nb, "--resume", run["id"], "-q")
    assert rc == 0, out + err
    resumed = show_json(nb.parent, run["id"] + 1)
    assert resumed["status"] == "success"
    why = {s["step_name"]: (s["status"], s["reason"]) for s in resumed["steps"]}
    assert why["first"] == ("cached", f"done in run {run['id']}")
    assert why["wait"] == ("success", f"interrupted in run {run['id']}")
    assert why["last"][0] == "success"
