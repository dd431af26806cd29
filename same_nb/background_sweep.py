"""Detached sweeps: start one for the server (the grid checked first) in a ``same-nb run --params-grid``
process of its own, and stop it later by sweep id.

The process's pid and start time go to ``.same/sweeps/<id>/process.json``, so a stop signals that very
process and nothing else. Stopping escalates as :func:`same_nb.background.stop_run` does for one run:
SIGINT (the CLI raises KeyboardInterrupt in every running grid point, whose runners shut their kernels
down and record their runs cancelled), SIGTERM after a grace period, SIGKILL last, after which the
kernels it left are killed and its unfinished runs recorded cancelled here.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from same_nb.background import CANCEL_GRACE, CANCELLED, TERM_GRACE, _alive, _cmdline, _started_ticks, escalate
from same_nb.errors import SameError

PROCESS_FILE = "process.json"
ACTIVE = ("pending", "running")


@dataclass
class StartedSweep:
    sweep_id: str
    runs: int             # grid points: each becomes a run recorded with ``sweep_id``
    pid: int
    log: Path


def sweep_folder(notebook_dir: Path, sweep_id: str) -> Path:
    return notebook_dir / ".same" / "sweeps" / sweep_id


def start_sweep(notebook: str | Path, grid: dict[str, list], params: list[tuple[str, str]] = (), *,
                use_cache: bool = True, jobs: int | None = None) -> StartedSweep:
    """Check a parameter grid against the notebook, then drive the sweep in a detached
    ``same-nb run --params-grid`` process; return its sweep id at once (its runs appear as they start).
    ``grid`` maps parameters to lists of values (text is typed like -p values). Raises SameError before
    any process starts."""
    from same_nb.frontend.sweep import Axis
    from same_nb.service import new_sweep_id, plan_notebook_sweep

    path = Path(notebook).resolve()
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        raise SameError("grid must map each parameter to a list of values, e.g. {\"C\": [\"0.1\", \"1.0\"]}")
    if jobs is not None and jobs < 1:
        raise SameError(f"jobs must be at least 1 (got {jobs})")
    plan = plan_notebook_sweep(path, [Axis(str(n), list(v), f"grid {n}") for n, v in grid.items()],
                               params=list(params))
    sweep_id = new_sweep_id()
    folder = sweep_folder(path.parent, sweep_id)
    folder.mkdir(parents=True, exist_ok=True)
    # Files, not argv: a value may start with "-" or be long.
    (folder / "grid.json").write_text(json.dumps(grid), encoding="utf-8")
    cmd = [sys.executable, "-m", "same_nb.cli", "run", str(path), "--params-grid", str(folder / "grid.json"),
           "--sweep-id", sweep_id, "--quiet"]
    if params:
        (folder / "params.json").write_text(json.dumps(dict(params)), encoding="utf-8")
        cmd += ["--params", str(folder / "params.json")]
    if not use_cache:
        cmd.append("--no-cache")
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    log_path = folder / "sweep.log"
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(cmd, cwd=path.parent, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise SameError(f"could not start the sweep process: {exc}", path=str(notebook)) from exc
    (folder / PROCESS_FILE).write_text(json.dumps({"pid": proc.pid, "started": _started_ticks(proc.pid),
                                                   "runs": len(plan.points)}), encoding="utf-8")
    threading.Thread(target=proc.wait, name=f"same-nb-sweep-{sweep_id}", daemon=True).start()
    return StartedSweep(sweep_id=sweep_id, runs=len(plan.points), pid=proc.pid, log=log_path)


def _process(notebook_dir: Path, sweep_id: str) -> dict | None:
    try:
        info = json.loads((sweep_folder(notebook_dir, sweep_id) / PROCESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = info.get("pid") if isinstance(info, dict) else None
    return info if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def _is_sweep_process(info: dict, sweep_id: str) -> bool:
    """Whether the recorded pid still is the sweep's own process (same start time, its id on argv)."""
    pid = info["pid"]
    if not _alive(pid, info.get("started")):
        return False
    args = _cmdline(pid)
    return "same_nb.cli" in args and "--sweep-id" in args and sweep_id in args


def sweep_process_state(notebook_dir: Path, sweep_id: str) -> dict | None:
    """``{"running": bool, "runs": planned grid points}`` for a sweep the server started; None otherwise
    (a sweep started from a terminal)."""
    info = _process(notebook_dir, sweep_id)
    if info is None:
        return None
    planned = info.get("runs")
    return {"running": _is_sweep_process(info, sweep_id),
            "runs": planned if isinstance(planned, int) and not isinstance(planned, bool) else None}


def stop_sweep(store, notebook_dir: Path, sweep_id: str, *, grace: float = CANCEL_GRACE,
               term_grace: float = TERM_GRACE, poll: float = 0.1) -> dict:
    """Cancel the sweep the server started in ``notebook_dir`` and return once its process stopped:
    ``{"sweep_id", "stopped", "message", "runs": [{"id", "status"}]}``. SameError when it is not ours
    to stop or has already ended."""
    from same_nb.store.sweeps import sweep_runs

    info = _process(notebook_dir, sweep_id)
    if info is None:
        raise SameError(f"sweep {sweep_id} was not started in the background here; stop it where it was "
                        "started, e.g. with Ctrl-C in its terminal")
    pid, began = info["pid"], time.monotonic()
    if not _is_sweep_process(info, sweep_id) and not any(r["status"] in ACTIVE for r in sweep_runs(store, sweep_id)):
        raise SameError(f"sweep {sweep_id} has already ended; nothing to cancel")
    sent, left = escalate(pid, lambda: _is_sweep_process(info, sweep_id), grace=grace, term_grace=term_grace,
                          poll=poll)
    if not left:
        # A run the process could not record as ended (SIGTERM, SIGKILL) was cancelled all the same.
        for run in sweep_runs(store, sweep_id):
            if run["status"] in ACTIVE + ("interrupted",):
                store.finish_run(run["id"], "cancelled", error=CANCELLED)
                current = store.get_run(run["id"]) or {}
                store.mark_steps(run["id"], [s["step_name"] for s in current.get("steps", [])
                                             if s["status"] in ACTIVE], "cancelled")
    runs = [{"id": r["id"], "status": r["status"]} for r in sweep_runs(store, sweep_id)]
    seconds = time.monotonic() - began
    how = " → ".join(sent) or "nothing (it had ended)"
    if left:
        message = (f"sweep {sweep_id} did not stop: process(es) {', '.join(map(str, left))} are still alive after "
                   f"{how} ({seconds:.1f} s); stop them with `kill -9 {' '.join(map(str, left))}`")
        return {"sweep_id": sweep_id, "stopped": False, "message": message, "runs": runs}
    cancelled = [r["id"] for r in runs if r["status"] == "cancelled"]
    message = (f"sweep {sweep_id} cancelled after {how} ({seconds:.1f} s); runs cancelled: "
               f"{', '.join(f'#{i}' for i in cancelled) or 'none'}")
    return {"sweep_id": sweep_id, "stopped": True, "message": message, "runs": runs}
