"""Detached runs: start a run that outlives the caller, and cancel it later by run id.

The caller (the Jupyter server extension) gets the run id at once: the run row is created here,
then ``python -m same_nb.background NOTEBOOK --run-id N`` drives it in a new session, writing its
progress to ``<run folder>/background.log``.

Cancelling (:func:`stop_run`) checks the pid still is that very process, then escalates until the run
has stopped: SIGINT (the runner shuts its kernels down and records the run cancelled), after a grace
period SIGTERM (the process kills its kernels' process groups itself, records the run cancelled and
exits at once), and last SIGKILL, after which the caller kills the kernels it saw and records the run.
The process catches SIGINT and SIGTERM whatever disposition it inherited: a Jupyter server started with
``nohup … &`` ignores SIGINT and passes that on to what it starts.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from same_nb.errors import SameError

LOG_NAME = "background.log"
PARAMS_NAME = "request-params.json"
MODULE = "same_nb.background"
CANCEL_GRACE = 5.0          # seconds between SIGINT and SIGTERM
TERM_GRACE = 4.0            # seconds between SIGTERM and SIGKILL
CANCELLED = "cancelled by the user"


@dataclass
class StartedRun:
    run_id: int
    run_dir: Path
    pid: int


def start_run(notebook: str | Path, params: list[tuple[str, str]] = (), *, use_cache: bool = True,
              jobs: int | None = None) -> StartedRun:
    """Validate, record the run and start it in a detached process; return without waiting.

    Bad notebooks and parameters raise SameError here, before any process starts.
    """
    from same_nb.local.prepared import prepare
    from same_nb.service import resolve_params
    from same_nb.store.database import open_store

    path = Path(notebook).resolve()
    if not path.is_file():
        raise SameError("no such notebook", path=str(notebook))
    if jobs is not None and jobs < 1:
        raise SameError(f"jobs must be at least 1 (got {jobs})")
    prepared = prepare(path)             # also warms the compile cache the child reads
    values = resolve_params(prepared.pipeline, prepared.config.get("params", {}), list(params))
    runs_root = path.parent / ".same" / "runs"
    with open_store(notebook_dir=path.parent) as store:
        run_id = store.create_run(notebook_path=str(path), notebook_sha256=prepared.pipeline.notebook_sha256,
                                  pipeline_name=prepared.pipeline.name, params=values, target="local",
                                  run_dir_root=runs_root)
        run_dir = runs_root / str(run_id)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", MODULE, str(path), "--run-id", str(run_id)]
            if params:
                # A file, not argv: a value may start with "-" or be long; argparse would take it for an option.
                params_file = run_dir / PARAMS_NAME
                params_file.write_text(json.dumps([[str(n), str(v)] for n, v in params]), encoding="utf-8")
                cmd += ["--params-json", str(params_file)]
            if not use_cache:
                cmd.append("--no-cache")
            if jobs is not None:
                cmd += ["--jobs", str(jobs)]
            with open(run_dir / LOG_NAME, "ab") as log:
                proc = subprocess.Popen(cmd, cwd=path.parent, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        except Exception as exc:      # the run row exists: it must not stay "running" with no process
            store.finish_run(run_id, "failed", error=f"could not start the run process: {exc}")
            raise SameError(f"could not start the run process: {exc}", path=str(notebook)) from exc
        _record_process(store, run_id, proc.pid)
    # Reap the child when it ends so it does not linger as a zombie of the server.
    threading.Thread(target=proc.wait, name=f"same-nb-run-{run_id}", daemon=True).start()
    return StartedRun(run_id=run_id, run_dir=run_dir, pid=proc.pid)


def _record_process(store, run_id: int, pid: int) -> None:
    """Point the run at the process that drives it, so liveness checks and cancel find it."""
    from sqlalchemy import update

    from same_nb.store.schema import runs

    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(pid=pid, pid_started=_started_ticks(pid)))


def _started_ticks(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rindex(")") + 2:].split()[19])


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\x00")
    except OSError:
        return []


def is_background_process(pid: int, run_id: int, started: int | None) -> bool:
    """Whether ``pid`` is (still) the ``same_nb.background`` process driving run ``run_id``."""
    args = _cmdline(pid)
    try:
        at = args.index("--run-id")
    except ValueError:
        return False
    if MODULE not in args or args[at + 1:at + 2] != [str(run_id)]:
        return False
    return started is None or _started_ticks(pid) == started


def _check_cancellable(run: dict) -> int:
    """The pid of the background process driving ``run`` (a ``Store.get_run`` record), or SameError."""
    run_id, pid = run["id"], run.get("pid")
    if run["status"] not in ("pending", "running"):
        raise SameError(f"run {run_id} is {run['status']}; only a running run can be cancelled")
    if run.get("sweep_id"):             # its sweep's process would start the next point regardless
        raise SameError(f"run {run_id} is a point of sweep {run['sweep_id']}: cancel the sweep "
                        f"(POST /same-nb/api/sweeps/{run['sweep_id']}/cancel, or its Sweep view)")
    if run.get("host") not in (None, socket.gethostname()):
        raise SameError(f"run {run_id} runs on host {run['host']}; cancel it there")
    if pid is None or not is_background_process(pid, run_id, run.get("pid_started")):
        raise SameError(f"run {run_id} was not started in the background here (pid {pid}); "
                        "stop it where it was started, e.g. with Ctrl-C in its terminal")
    return pid


def cancel_run(run: dict) -> None:
    """Send SIGINT to the background process of ``run`` and return (see :func:`stop_run` to wait)."""
    try:
        os.kill(_check_cancellable(run), signal.SIGINT)
    except ProcessLookupError:
        raise SameError(f"run {run['id']} has already ended") from None


def descendants(pid: int) -> dict[int, int | None]:
    """{pid: start ticks} of the live processes below ``pid`` (its step kernels and what they started)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, int | None] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = _started_ticks(child)
                todo.append(child)
    return found


def _alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` still is the process that started at ``started`` ticks (a zombie is not alive)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0] != "Z" and (started is None or int(fields[19]) == started)


def kill_processes(found: dict[int, int | None]) -> None:
    """SIGKILL each process of ``found`` that is still itself, with its process group when it leads one
    (a kernel runs in a session of its own: what it started goes too)."""
    for pid, started in found.items():
        if not _alive(pid, started):
            continue
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@dataclass
class Stopped:
    """The answer to a cancel: ``stopped`` is False when a process of the run is still alive."""
    run_id: int
    status: str
    stopped: bool
    message: str
    seconds: float

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "status": self.status, "stopped": self.stopped, "message": self.message}


def escalate(pid: int, alive, *, grace: float, term_grace: float, poll: float) -> tuple[list[str], list[int]]:
    """Stop process ``pid`` while ``alive()`` (it still is that process): SIGINT, SIGTERM after ``grace``
    s, SIGKILL ``term_grace`` s later; then kill the processes it had below it (kernels it could not shut
    down). Returns the signals sent and the pids still alive after all that."""
    began = time.monotonic()
    seen = descendants(pid) if alive() else {}
    sent: list[str] = []
    for name, after in (("SIGINT", 0.0), ("SIGTERM", grace), ("SIGKILL", grace + term_grace)):
        while alive() and time.monotonic() - began < after:
            seen.update(descendants(pid))
            time.sleep(poll)
        if not alive():
            break
        seen.update(descendants(pid))
        try:
            os.kill(pid, getattr(signal, name))
            sent.append(name)
        except ProcessLookupError:
            break
    deadline = time.monotonic() + 2.0
    while alive() and time.monotonic() < deadline:
        time.sleep(poll)
    kill_processes(seen)
    deadline = time.monotonic() + 2.0
    while any(_alive(p, t) for p, t in seen.items()) and time.monotonic() < deadline:
        time.sleep(poll)
    left = sorted(p for p, t in seen.items() if _alive(p, t))
    if alive():
        left.insert(0, pid)
    return sent, left


def stop_run(store, run: dict, *, grace: float = CANCEL_GRACE, term_grace: float = TERM_GRACE,
             poll: float = 0.1) -> Stopped:
    """Cancel ``run`` (a ``Store.get_run`` record of ``store``) and return once it stopped, escalating
    SIGINT → SIGTERM (after ``grace`` s) → SIGKILL (``term_grace`` s later); then kill whatever
    kernel its process left behind and record the run cancelled if it did not record that itself."""
    run_id = run["id"]
    pid = _check_cancellable(run)
    ticks = run.get("pid_started") or _started_ticks(pid)
    began = time.monotonic()
    sent, left = escalate(pid, lambda: is_background_process(pid, run_id, ticks), grace=grace,
                          term_grace=term_grace, poll=poll)
    current = store.get_run(run_id) or run
    if not left and current["status"] in ("pending", "running", "interrupted"):
        # The process died without recording its end (SIGKILL), or before the store's liveness check
        # saw it as interrupted: it was cancelled.
        store.finish_run(run_id, "cancelled", error=CANCELLED)
        store.mark_steps(run_id, [s["step_name"] for s in current.get("steps", [])
                                  if s["status"] in ("pending", "running")], "cancelled")
        current = store.get_run(run_id) or current
    seconds = time.monotonic() - began
    how = " → ".join(sent) or "nothing (it had ended)"
    if left:
        message = (f"run {run_id} did not stop: process(es) {', '.join(map(str, left))} are still alive after "
                   f"{how} ({seconds:.1f} s); stop them with `kill -9 {' '.join(map(str, left))}`")
        return Stopped(run_id, current["status"], False, message, seconds)
    message = f"run {run_id} {current['status']} after {how} ({seconds:.1f} s)"
    return Stopped(run_id, current["status"], True, message, seconds)


def _finish_if_active(notebook: Path, run_id: int, status: str, error: str) -> None:
    from same_nb.store.database import open_store

    try:
        with open_store(notebook_dir=notebook.parent) as store:
            run = store.get_run(run_id)
            if run is not None and run["status"] in ("pending", "running"):
                store.finish_run(run_id, status, error=error)
                if status == "cancelled":
                    store.mark_steps(run_id, [s["step_name"] for s in run.get("steps", [])
                                              if s["status"] in ("pending", "running")], status)
    except SameError as exc:
        print(f"error: could not record the end of run {run_id}: {exc}", file=sys.stderr)


def _terminate(notebook: Path, run_id: int) -> None:
    """SIGTERM: the run did not stop on SIGINT (a step's kernel does not shut down, the runner hangs).
    Kill the kernels' process groups, record the run cancelled and exit now, skipping the runner."""
    kill_processes(descendants(os.getpid()))
    _finish_if_active(notebook, run_id, "cancelled", CANCELLED)
    print(f"run {run_id} cancelled (SIGTERM: its kernels were killed)", flush=True)
    kernels = sys.modules.get("same_nb.local.kernels")
    if kernels is not None:
        kernels._remove_socket_dirs()
    os._exit(128 + signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description="Drive one pre-created run (started by start_run).")
    parser.add_argument("notebook")
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--params-json", metavar="FILE", help="a JSON list of [name, value] pairs (what start_run writes)")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--jobs", type=int)
    args = parser.parse_args(argv)
    # cancel_run sends SIGINT: it must raise KeyboardInterrupt here even if the server that started
    # this process ignores SIGINT (and so passed that on).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    notebook = Path(args.notebook)
    signal.signal(signal.SIGTERM, lambda *_: _terminate(notebook, args.run_id))

    from same_nb.local.progress import PlainProgress
    from same_nb.service import run_notebook

    pairs = [tuple(p) for p in args.param]
    try:
        if args.params_json:
            pairs += [tuple(p) for p in json.loads(Path(args.params_json).read_text(encoding="utf-8"))]
        result = run_notebook(notebook, params=pairs, jobs=args.jobs,
                              use_cache=not args.no_cache, progress=PlainProgress(), run_id=args.run_id)
    except KeyboardInterrupt:
        print(f"run {args.run_id} cancelled", flush=True)
        _finish_if_active(notebook, args.run_id, "cancelled", "cancelled by the user")
        return 130
    except SameError as exc:
        print(f"error: {exc}", flush=True)
        _finish_if_active(notebook, args.run_id, "failed", str(exc))
        return 1
    except Exception as exc:  # anything else must still end the run record, not leave it running
        import traceback

        traceback.print_exc()
        _finish_if_active(notebook, args.run_id, "failed", f"{type(exc).__name__}: {exc}")
        return 1
    print(f"run {result.run_id} {result.status} in {result.seconds:.1f}s", flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
