"""Drive a parameter sweep's grid points as runs: the first point alone, which computes (or finds in
the cache) the steps every point shares; then the other points concurrently within ``--jobs``, each
recording those shared steps as cache hits of the first point's step runs, so they run exactly once.

The run function is handed in (``service.run_notebook`` with the sweep's options), as rerun's is.
"""
from __future__ import annotations

import ctypes
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from same_nb.local.progress import PlainProgress


class SweepCancelled(KeyboardInterrupt):
    """Ctrl-C stopped the sweep; ``runs`` are the runs it had started (each recorded as cancelled
    or finished)."""

    def __init__(self, sweep_id: str, runs: list[int]):
        super().__init__(sweep_id)
        self.sweep_id, self.runs = sweep_id, runs


@dataclass
class GridOutcome:
    results: dict[int, object] = field(default_factory=dict)      # point index -> RunResult
    not_started: list[int] = field(default_factory=list)           # point indexes never run
    errors: dict[int, str] = field(default_factory=dict)           # point index -> why its run did not start
    why_not: str = ""


def run_grid(count: int, run_one, shared_of, *, jobs: int, sweep_id: str, shares: bool = True) -> GridOutcome:
    """``run_one(index, shared, jobs)`` runs grid point ``index`` and returns its RunResult;
    ``shared_of(result)`` returns ``(records, failed)``: the first run's shared step records, as
    ``run_one`` hands them on, and the name of a shared step that failed there (then every other
    point would fail the same way, so none is started). ``shares`` False: no step is shared, so every
    point starts at once."""
    outcome = GridOutcome()
    shared, failed, rest = {}, None, list(range(count))
    if shares:
        try:
            first = run_one(0, {}, jobs)
        except KeyboardInterrupt as exc:
            raise SweepCancelled(sweep_id, [exc.run_id] if hasattr(exc, "run_id") else []) from None
        outcome.results[0] = first
        shared, failed = shared_of(first)
        rest = rest[1:]
    if failed and rest:
        outcome.not_started = rest
        outcome.why_not = (f"shared step '{failed}' failed in run {first.run_id}; every other grid point "
                           f"needs it, so none was started")
        return outcome
    if not rest:
        return outcome
    # Each concurrent run gets an equal share of the step slots: at most ``jobs`` steps at once overall.
    workers = min(jobs, len(rest))
    each = max(1, jobs // workers)
    threads: dict[int, int] = {}                    # point index -> thread ident while it runs
    lock = threading.Lock()

    def one(index: int):
        with lock:
            threads[index] = threading.get_ident()
        try:
            return run_one(index, shared, each)
        except Exception as exc:         # e.g. the store refused a write: the other points go on
            outcome.errors[index] = str(exc) or type(exc).__name__
            return None
        finally:
            with lock:
                threads.pop(index, None)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="same-nb-sweep")
    futures: dict[Future, int] = {pool.submit(one, i): i for i in rest}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.result() is not None:
                    outcome.results[futures[fut]] = fut.result()
    except KeyboardInterrupt:
        for fut in futures:
            fut.cancel()
        # The runs' threads never see Ctrl-C: raise it in each, so each runner shuts its kernels down
        # and records its run as cancelled, exactly as a single run does.
        with lock:
            idents = list(threads.values())
        for ident in idents:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
        pool.shutdown(wait=True, cancel_futures=True)
        started = [r.run_id for r in outcome.results.values()]
        started += [getattr(f.exception(), "run_id", None) for f in futures if not f.cancelled() and f.done()
                    and f.exception() is not None]
        started = sorted(i for i in started if isinstance(i, int))
        raise SweepCancelled(sweep_id, started) from None
    pool.shutdown(wait=True)
    return outcome


class PointProgress(PlainProgress):
    """A grid point's step lines, each naming the point: N runs share one terminal, so the live table
    of a single run would be unreadable; a table of every run follows at the end."""

    def __init__(self, label: str, t0: float | None = None, stream=None):
        super().__init__(stream)
        self.label = label
        if t0 is not None:
            self.t0 = t0

    def start(self, order, states) -> None:
        print(f"[{time.time() - self.t0:6.1f}s] {self.label}: {len(order)} steps", file=self.stream, flush=True)

    def update(self, name, st) -> None:
        from same_nb.local.progress import _elapsed

        detail = st.reason if st.status in ("running", "cached", "skipped") else _elapsed(st)
        print(f"[{time.time() - self.t0:6.1f}s] {self.label} {name}: {st.status}"
              + (f" ({detail})" if detail else ""), file=self.stream, flush=True)
