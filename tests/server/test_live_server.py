"""Against a real ``jupyter server`` process started as users start it (``nohup … &``: SIGINT ignored, and
passed on to everything it starts): cancelling a run through the REST API really stops it, and a
running step's output can be followed live."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from server.live import LiveServer, alive, descendants, signal_mask

from conftest import TESTS

NOTEBOOKS = TESTS / "notebooks"
pytestmark = pytest.mark.slow
SIGINT_BIT = 1 << (signal.SIGINT - 1)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    state = tmp_path / "state"
    state.mkdir()
    live = LiveServer(root, state, ignore_sigint=True).start()
    yield live
    left = descendants(live.proc.pid)
    live.stop()
    for pid in left:                      # a failed test must not leave runs or kernels behind
        try:


            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _kernel(cmd: str) -> bool:
    """A step kernel, started fresh (ipykernel_launcher) or forked from the run's zygote (which
    carries the zygote's command line); the zygote itself must stop too."""
    return "ipykernel" in cmd or "same_nb.runtime.zygote" in cmd


def slow_notebook(folder: Path, name: str, left_source: str) -> str:
    nb = json.loads((NOTEBOOKS / "branching.ipynb").read_text())
    nb["cells"][2]["source"] = left_source
    (folder / name).write_text(json.dumps(nb))
    return f"work/{name}"


def wait_until(server: LiveServer, run_id: int, path: str, done, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, run = server.call("GET", f"runs/{run_id}", {"path": path})
        assert code == 200, run
        if done(run):
            return run
        assert run["status"] in ("pending", "running"), run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not get there in {timeout} s: {run}")


def step_status(run: dict, name: str) -> str | None:
    return next((s["status"] for s in run.get("steps", []) if s["step_name"] == name), None)


def test_cancel_stops_a_run_of_a_server_that_ignores_sigint(server):
    assert signal_mask(server.proc.pid, "SigIgn") & SIGINT_BIT          # started as nohup would
    path = slow_notebook(server.root / "work", "slow.ipynb",
                         "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\nleft = [b * 2 for b in base]")
    code, reply = server.call("POST", "runs", body={"path": path})
    assert code == 202, reply
    run_id = reply["run_id"]
    run = wait_until(server, run_id, path, lambda r: step_status(r, "left") == "running")
    background = run["pid"]
    assert signal_mask(background, "SigCgt") & SIGINT_BIT                 # the run process catches SIGINT again
    time.sleep(1.0)                                                       # the step is inside its sleep
    kernels = {pid: cmd for pid, cmd in descendants(background).items() if _kernel(cmd)}
    assert kernels, descendants(background)

    started = time.monotonic()
    code, reply = server.call("POST", f"runs/{run_id}/cancel", body={"path": "work"})
    took = time.monotonic() - started
    assert code == 200, reply
    assert reply["stopped"] is True and reply["run_id"] == run_id and reply["status"] == "cancelled", reply
    assert took < 16, took
    print(f"cancel took {took:.2f} s: {reply['message']}")
    assert not alive(background)
    assert [pid for pid in kernels if alive(pid)] == [], kernels
    code, run = server.call("GET", f"runs/{run_id}", {"path": path})
    assert run["status"] == "cancelled", run
    assert step_status(run, "left") == "cancelled"
    code, reply = server.call("POST", f"runs/{run_id}/cancel", body={"path": "work"})
    assert code == 409 and "is cancelled" in reply["message"]


def start_sleeping_run(server: LiveServer, name: str = "slow.ipynb") -> tuple[str, int, int, dict[int, str]]:
    """(path, run id, run process pid, its kernels) of a run whose step `left` sleeps for two minutes."""
    path = slow_notebook(server.root / "work", name,
                         "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\nleft = [b * 2 for b in base]")
    code, reply = server.call("POST", "runs", body={"path": path})
    assert code == 202, reply
    run = wait_until(server, reply["run_id"], path, lambda r: step_status(r, "left") == "running")
    time.sleep(1.0)
    kernels = {pid: cmd for pid, cmd in descendants(run["pid"]).items() if _kernel(cmd)}
    assert kernels
    return path, run["id"], run["pid"], kernels


def test_cancel_escalates_to_sigkill_when_the_run_process_does_not_react(server):
    """A run process that handles neither SIGINT nor SIGTERM (stopped here with SIGSTOP, as a process
    stuck in a system call would be): the cancel kills it and its kernels, and records the run."""
    path, run_id, background, kernels = start_sleeping_run(server)
    os.kill(background, signal.SIGSTOP)
    started = time.monotonic()
    code, reply = server.call("POST", f"runs/{run_id}/cancel", body={"path": "work"})
    took = time.monotonic() - started
    print(f"escalated cancel took {took:.2f} s: {reply['message']}")
    assert code == 200 and reply["stopped"] is True and reply["status"] == "cancelled", reply
    assert "SIGINT → SIGTERM → SIGKILL" in reply["message"] and took < 16
    assert not alive(background) and [pid for pid in kernels if alive(pid)] == []
    code, run = server.call("GET", f"runs/{run_id}", {"path": path})
    assert run["status"] == "cancelled" and step_status(run, "left") == "cancelled", run


def test_sigterm_makes_the_run_process_kill_its_kernels_and_record_the_cancel(server):
    path, run_id, background, kernels = start_sleeping_run(server)
    os.kill(background, signal.SIGTERM)              # what the cancel sends when SIGINT did not stop it
    deadline = time.monotonic() + 10
    while alive(background) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(background)
    assert [pid for pid in kernels if alive(pid)] == []
    code, run = server.call("GET", f"runs/{run_id}", {"path": path})
    assert run["status"] == "cancelled" and run["error"] == "cancelled by the user", run
    assert step_status(run, "left") == "cancelled"
    assert "SIGTERM: its kernels were killed" in run["log_tail"]


def test_a_running_steps_output_is_followed_live(server):
    path = slow_notebook(server.root / "work", "ticks.ipynb",
                         "import time\nfor i in range(25):\n    print(f'tick {i}', flush=True)\n"
                         "    time.sleep(0.4)\nleft = [b * 2 for b in base]")
    code, reply = server.call("POST", "runs", body={"path": path})
    run_id = reply["run_id"]
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        code, log = server.call("GET", f"runs/{run_id}/steps/left/log", {"path": path, "limit": "30"})
        assert code == 200, log
        seen.append(log)
        if log["running"] and "tick 6" in log["text"] and log["cell"] is not None:
            break
        time.sleep(0.3)
    live = seen[-1]
    assert live["running"] is True and "tick 6" in live["text"], seen[-3:]
    assert live["cell"] == 3                         # the source notebook's cell of step left
    assert len(live["text"]) <= 30 and "tick 0" not in live["text"]      # only the newest characters
    assert any(0 < s["text"].count("tick") for s in seen)
    wait_until(server, run_id, path, lambda r: r["status"] == "success")
    code, final = server.call("GET", f"runs/{run_id}/steps/left/log", {"path": path})
    assert final["running"] is False and final["cell"] is None and "tick 24" in final["text"]
    assert final["text"].index("tick 0") < final["text"].index("tick 24")
    code, other = server.call("GET", f"runs/{run_id}/steps/load/log", {"path": path})
    assert code == 200 and other["running"] is False
    code, missing = server.call("GET", f"runs/{run_id}/steps/nope/log", {"path": path})
    assert code == 404 and "has no step 'nope'" in missing["message"]
    code, bad = server.call("GET", f"runs/{run_id}/steps/left/log", {"path": path, "limit": "x"})
    assert code == 400 and "limit" in bad["message"]
