"""Show a run's progress: a live table on a terminal, plain lines otherwise; then a summary."""
from __future__ import annotations

import sys
import time

from same_nb.text import number_text, seconds_text  # noqa: F401  (re-exported for the tables here and report)

STOPPING = "stopping kernels…"
ICONS = {"pending": "·", "running": "▶", "success": "✔", "cached": "⚡", "failed": "✘", "skipped": "↷",
         "cancelled": "■"}


def step_time_text(duration_s: float | None, compute_s: float | None = None,
                   kernel_wait_s: float | None = None) -> str:
    """A step run's time as every view shows it: its compute, and the wait for its kernel beside it
    ("0.41 s (+ 6.8 s kernel)"); only the wall time when the compute was not measured (a cache hit)."""
    if compute_s is None:
        return seconds_text(duration_s) if duration_s is not None else "-"
    text = seconds_text(compute_s)
    if kernel_wait_s is not None and kernel_wait_s >= 0.05:
        text += f" (+ {seconds_text(kernel_wait_s)} kernel)"
    return text


def _elapsed(st) -> str:
    if st.status == "running" and st.started_at:
        waiting = "" if st.kernel_wait_s is not None else ", waiting for its kernel"
        return f"{time.time() - st.started_at:.1f} s{waiting}"
    if st.status in ("success", "failed"):
        return step_time_text(st.seconds, st.compute_s, st.kernel_wait_s)
    return ""


class PlainProgress:
    """One line per state change: safe for logs and pipes."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.t0 = time.time()

    def start(self, order, states) -> None:
        print(f"[{0:6.1f}s] {len(order)} steps: {', '.join(order)}", file=self.stream, flush=True)

    def update(self, name, st) -> None:
        detail = st.reason if st.status in ("running", "cached", "skipped") else _elapsed(st)
        print(f"[{time.time() - self.t0:6.1f}s] {name}: {st.status}" + (f" ({detail})" if detail else ""),
              file=self.stream, flush=True)

    def tick(self, states) -> None:
        pass

    def stopping(self) -> None:
        """Ctrl-C: say at once that the run is stopping (shutting kernels down takes a moment)."""
        print(STOPPING, file=sys.stderr, flush=True)

    def stop(self) -> None:
        pass


class LiveProgress:
    """A rich table redrawn as steps change state."""

    def __init__(self):
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.live = Live(console=self.console, refresh_per_second=8, transient=False)
        self.order: list[str] = []
        self.states = {}

    def _table(self):
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False)
        for col in ("", "step", "status", "time", "note"):
            table.add_column(col)
        for name in self.order:
            st = self.states[name]
            note = st.reason if st.status in ("running", "cached", "skipped") else ""
            table.add_row(ICONS.get(st.status, "?"), Text(name), st.status, _elapsed(st), Text(note))
        return table

    def start(self, order, states) -> None:
        self.order, self.states = order, states
        self.live.start()
        self.live.update(self._table())

    def update(self, name, st) -> None:
        self.live.update(self._table())

    def tick(self, states) -> None:
        self.live.update(self._table())

    def stopping(self) -> None:
        self.stop()
        print(STOPPING, file=sys.stderr, flush=True)

    def stop(self) -> None:
        if not self.live.is_started:
            return
        self.live.update(self._table())
        self.live.stop()


def make_progress(quiet: bool = False):
    if quiet:
        return _Silent()
    return LiveProgress() if sys.stdout.isatty() else PlainProgress()


class _Silent(PlainProgress):
    def start(self, order, states) -> None:
        pass

    def update(self, name, st) -> None:
        pass


def print_summary(result, stream=None) -> None:
    """The table of steps with why each ran, then errors with their cell and line."""
    out = stream or sys.stdout
    rows = [("step", "status", "time", "why")]
    for name, st in result.states.items():
        shown = st.seconds if st.status in ("success", "failed", "cached") else None
        rows.append((name, st.status, step_time_text(shown, st.compute_s, st.kernel_wait_s), st.reason or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}", file=out)
    for name, st in result.states.items():
        for w in st.warnings:
            print(f"warning: step {name}: {w['message']}", file=out)
        if st.error:
            print(format_step_error(name, st), file=out)
    print(f"Run {result.run_id} {result.status} in {result.seconds:.1f}s. Run folder: {result.run_dir}", file=out)


def format_step_error(name: str, st) -> str:
    e = st.error
    where = []
    if e.get("cell") is not None:
        where.append(f"cell {e['cell']}")
    if e.get("line") is not None:
        where.append(f"line {e['line']}")
    loc = ", ".join(where) or e.get("where", "")
    lines = [f"error: step {name} failed at {loc}: {e.get('ename')}: {e.get('evalue')}"]
    tb = [ln for ln in (e.get("traceback") or "").splitlines() if ln.strip()]
    lines += ["    " + ln for ln in tb[-6:]]
    if st.executed:
        lines.append(f"    executed notebook: {st.executed}")
    return "\n".join(lines)
