"""Execute one step notebook with papermill in a warm kernel and describe what happened."""
from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from same_nb.bundle.writer import SPEC_VARIABLE

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[(\d+)\], line (\d+)")


@dataclass
class StepOutcome:
    ok: bool
    seconds: float
    outputs: dict[str, dict] = field(default_factory=dict)     # name -> artifact record
    warnings: list[dict] = field(default_factory=list)
    durations: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    error: dict | None = None           # {ename, evalue, cell, cell_id, line, traceback, where}
    stopped: dict | None = None         # the step ended the notebook with sys.exit(0): {cell}


def write_spec(path: Path, *, step: str, store_root: Path, inputs: dict[str, dict],
               outputs: dict[str, list[str]], watch: list[str], result: Path,
               snapshot: list[str] | None = None, metrics: list[str] = (),
               verify: dict[str, dict] | None = None, state_check: bool = False,
               later: list[str] = ()) -> None:
    spec = {"step": step, "store": str(store_root), "inputs": inputs, "outputs": outputs, "watch": watch,
            "verify": verify or {}, "state_check": state_check, "later": list(later), "result": str(result),
            "metrics": list(metrics)}
    if snapshot is not None:
        spec["snapshot"] = snapshot
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1))


def _error_details(exc, executed: Path) -> dict:
    """Map papermill's error to the source notebook's cell and line."""
    tb = [_ANSI.sub("", t) for t in (getattr(exc, "traceback", None) or [])]
    err = {"ename": getattr(exc, "ename", type(exc).__name__), "evalue": getattr(exc, "evalue", str(exc)),
           "cell": None, "cell_id": None, "line": None, "where": "step code",
           "traceback": "\n".join(tb[-12:])}
    try:
        nb = json.loads(executed.read_text())
        # papermill inserts an error banner cell at the top, so find the cell by execution count.
        cell = next(c for c in nb["cells"] if c.get("cell_type") == "code"
                    and c.get("execution_count") == exc.exec_count)
        meta = cell.get("metadata", {}).get("same_nb", {})
        err["cell"], err["cell_id"] = meta.get("cell"), cell.get("id")
        if cell.get("id") in ("same-nb-prologue", "same-nb-epilogue"):
            err["where"] = "loading inputs" if cell["id"] == "same-nb-prologue" else "saving outputs"
            err["traceback"] = ""       # the runtime's message says it all; its frames are noise
            return err
        lines = [int(ln) for n, ln in _CELL_LINE.findall("\n".join(tb)) if int(n) == exc.exec_count]
        err["line"] = lines[0] if lines else None
    except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError, StopIteration):
        pass
    return err


def _system_exit(executed: Path) -> dict:
    try:
        for c in json.loads(executed.read_text())["cells"]:
            if any(o.get("ename") == "SystemExit" for o in c.get("outputs", [])):
                return {"cell": c.get("metadata", {}).get("same_nb", {}).get("cell"), "cell_id": c.get("id")}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return {"cell": None, "cell_id": None}


def _running_cell(executed: Path) -> tuple[int | None, str | None]:
    """The source notebook's cell (and the executed cell's id) started last: the one that timed out."""
    try:
        started = [c for c in json.loads(executed.read_text())["cells"] if c.get("execution_count")]
        last = max(started, key=lambda c: c["execution_count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    return last.get("metadata", {}).get("same_nb", {}).get("cell"), last.get("id")


# papermill writes the whole executed notebook at every cell's start and end: quadratic in cells (a
# 1,000-cell step took 212 s). Ours writes at most once a second, and never spends more than about a
# tenth of the run writing (a write of a big notebook waits ten times its own length before the next),
# plus always at the start, and at the end or on failure, so a failed step shows where it stopped.
SAVE_INTERVAL = 1.0         # seconds between two writes of the executed notebook while it runs
SAVE_SHARE = 10             # ... and at least this many times the last write's duration
ENGINE = "same-nb"          # the papermill engine name
_ENGINE_LOCK = threading.Lock()


_SPLIT_MIMES = ("application/javascript", "image/svg+xml")    # split into lines like text/* (nbformat)


def _notebook_text(nb) -> str:
    """The notebook's JSON as nbformat writes it (multi-line strings as lists of lines, transient keys
    dropped), without nbformat's deep copy of the whole notebook or its schema validation: three
    times cheaper. Only papermill's final write of the executed notebook validates it."""
    from nbformat.v4.nbjson import BytesEncoder

    def lines(value):
        return value.splitlines(True) if isinstance(value, str) else value

    def bundle(data: dict) -> dict:
        return {k: lines(v) if k.startswith("text/") or k in _SPLIT_MIMES else v for k, v in data.items()}

    cells = []
    for cell in nb.cells:
        out = {**cell, "source": lines(cell.get("source", "")),
               "metadata": {k: v for k, v in cell.get("metadata", {}).items() if k != "trusted"}}
        if "attachments" in cell:
            out["attachments"] = {name: bundle(b) for name, b in cell["attachments"].items()}
        if "outputs" in cell:
            out["outputs"] = [{**o, "data": bundle(o["data"])} if "data" in o
                              else {**o, "text": lines(o["text"])} if o.get("output_type") == "stream" else o
                              for o in cell["outputs"]]
        cells.append(out)
    skip = ("orig_nbformat", "orig_nbformat_minor", "signature")
    doc = {**nb, "cells": cells, "metadata": {k: v for k, v in nb.get("metadata", {}).items() if k not in skip}}
    return json.dumps(doc, cls=BytesEncoder, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False)


def _write_atomically(text: str, path: str) -> None:
    """Readers (the server's live view) never see half a notebook."""
    tmp = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"    # open() keeps the umask's mode
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _engine():
    """papermill's nbclient engine with the throttled manager; registered once under ENGINE."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
    from papermill.exceptions import PapermillException

    with _ENGINE_LOCK:      # steps run on several threads
        try:
            return papermill_engines.get_engine(ENGINE)
        except PapermillException:
            engine = _throttled_engine(NBClientEngine, NotebookExecutionManager)
            papermill_engines.register(ENGINE, engine)
            return engine


def _throttled_engine(base_engine, base_manager):
    class ThrottledManager(base_manager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.next_write = 0.0           # monotonic time before which save() does not write
            self.writes = 0

        def save(self, **kwargs):
            if kwargs.get("nb"):
                self.nb = kwargs["nb"]
            if self.output_path and time.monotonic() >= self.next_write:
                self.write()

        def write(self) -> None:
            began = time.monotonic()
            _write_atomically(_notebook_text(self.nb), self.output_path)
            done = time.monotonic()
            self.next_write = done + max(SAVE_INTERVAL, SAVE_SHARE * (done - began))
            self.writes += 1
            self.last_save_time = self.now()    # papermill's autosave_cell: a cell printing for long is saved

        def finish(self, *, write: bool) -> None:
            if write:
                self.next_write = 0.0       # notebook_complete's save() always writes
            else:
                self.next_write = math.inf  # papermill writes the final notebook itself
            self.notebook_complete()

    class ThrottledEngine(base_engine):
        manager_class = ThrottledManager

        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):
            nb_man = cls.manager_class(nb, output_path=output_path, progress_bar=progress_bar,
                                      log_output=log_output, autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            except BaseException:
                # Kernel died, timed out, interrupted: papermill marks the cell completed and writes
                # nothing more. Mark the cell that was running as failed (later ones stay pending) and write.
                started = [c for c in nb_man.nb.cells if c.get("metadata", {}).get("papermill", {}).get("start_time")]
                if started:
                    nb_man.cell_exception(started[-1])
                nb_man.cleanup_pbar()
                nb_man.finish(write=True)
                raise
            nb_man.cleanup_pbar()
            nb_man.finish(write=False)
            return nb_man.nb

    return ThrottledEngine


def run_step_notebook(*, notebook: Path, executed: Path, spec_path: Path, result_path: Path,
                      params: dict, kernel, kernel_name: str, log_path: Path,
                      timeout: float | None = None) -> StepOutcome:
    """Run the step notebook; the executed copy (with outputs or the error) lands at ``executed``."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    started = time.perf_counter()
    _engine()
    executed.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            pm.execute_notebook(str(notebook), str(executed), parameters={**params, SPEC_VARIABLE: str(spec_path)},
                                kernel_name=kernel_name, engine_name=ENGINE, progress_bar=False, log_output=False,
                                autosave_cell_every=SAVE_INTERVAL, stdout_file=log, stderr_file=log, km=kernel.km,
                                execution_timeout=None if timeout is None else math.ceil(timeout))  # int seconds
        except PapermillExecutionError as exc:
            return StepOutcome(ok=False, seconds=time.perf_counter() - started,
                               error=_error_details(exc, executed))
        except Exception as exc:  # kernel died, timeout, …: report it against the cell that was running
            cell, cell_id = _running_cell(executed)
            return StepOutcome(ok=False, seconds=time.perf_counter() - started,
                               error={"ename": type(exc).__name__, "evalue": str(exc), "cell": cell,
                                      "cell_id": cell_id, "line": None, "where": "kernel", "traceback": ""})
    if not result_path.exists():
        # papermill stops at a cell that raised SystemExit(0) and reports success, as a top-to-bottom
        # run of the notebook ends there: no epilogue ran, so there is no result.
        return StepOutcome(ok=True, seconds=time.perf_counter() - started, stopped=_system_exit(executed))
    result = json.loads(result_path.read_text())
    return StepOutcome(ok=True, seconds=time.perf_counter() - started, outputs=result.get("outputs", {}),
                       warnings=result.get("warnings", []), durations=result.get("durations", {}),
                       metrics=result.get("metrics", []))
