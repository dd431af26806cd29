"""Execute one step notebook with papermill in a warm kernel and describe what happened."""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from same_nb.bundle.writer import SPEC_VARIABLE
from same_nb.runtime import notebook_engine
from same_nb.runtime.resources import FAILED_RESOURCES

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
    modules: list[str] | None = None    # third-party modules loaded at its end; None: not observed
    needs: dict[str, list[str]] = field(default_factory=dict)   # output -> import names its value needs
    compute_s: float | None = None      # the step notebook's cells executing (papermill's per-cell times)
    resources: dict = field(default_factory=dict)   # {peak_rss_bytes, cpu_s} measured in the kernel (runtime/resources.py)

    def observation(self, run_id: int) -> dict | None:
        """What this run of the step showed it needs installed (``store/observed.py``), if it got to the end."""
        if not self.ok or self.modules is None:
            return None
        return {"run": run_id, "modules": list(self.modules),
                "outputs": {name: {"kind": rec.get("kind"), "type": rec.get("type"),
                                   "needs": list(self.needs.get(name, []))}
                            for name, rec in sorted(self.outputs.items())}}


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


_NO_MODULE = re.compile(r"No module named '([A-Za-z_][\w]*)'")


def with_install_hint(error: dict) -> dict:
    """A missing top-level module gets the command that installs it: its distribution from the map
    envs/ keeps (sklearn → scikit-learn), else its own name. A missing submodule of an installed
    package (``numpy.nope``) is not an installation problem: no hint."""
    found = _NO_MODULE.search(str((error or {}).get("evalue") or ""))
    if not found or error.get("ename") not in ("ModuleNotFoundError", "ImportError"):
        return error
    from same_nb.envs.requirements import module_map

    module = found.group(1)
    return {**error, "evalue": f"{error['evalue']} — install it with: pip install {module_map().get(module, module)}"}


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


def _cells_seconds(cells) -> float | None:
    """The time the cells took to execute, from papermill's per-cell metadata: the step's compute,
    without the kernel's start, papermill's reading and writing, or the store."""
    try:
        times = [c.get("metadata", {}).get("papermill", {}).get("duration") for c in cells]
    except (AttributeError, TypeError):
        return None
    times = [t for t in times if isinstance(t, (int, float))]
    return round(sum(times), 6) if times else None


def _failed_resources(result_path: Path) -> dict:
    """What a step whose cell raised used until then (``runtime/resources.py`` ``on_failure``)."""
    for path, key in ((result_path, "resources"), (result_path.with_name(FAILED_RESOURCES), None)):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found = data.get(key) if key else data
        if isinstance(found, dict):
            return found
    return {}


def _executed_cells(executed: Path) -> list:
    try:
        return json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def run_step_notebook(*, notebook: Path, executed: Path, spec_path: Path, result_path: Path,
                      params: dict, kernel, kernel_name: str, log_path: Path,
                      timeout: float | None = None) -> StepOutcome:
    """Run the step notebook; the executed copy (with outputs or the error) lands at ``executed``."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    started = time.perf_counter()
    notebook_engine.register()
    executed.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    result_path.with_name(FAILED_RESOURCES).unlink(missing_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            nb = pm.execute_notebook(str(notebook), str(executed), parameters={**params, SPEC_VARIABLE: str(spec_path)},
                                kernel_name=kernel_name, engine_name=notebook_engine.ENGINE, progress_bar=False,
                                log_output=False, autosave_cell_every=notebook_engine.SAVE_INTERVAL,
                                stdout_file=log, stderr_file=log, km=kernel.km,
                                execution_timeout=None if timeout is None else math.ceil(timeout))  # int seconds
        except PapermillExecutionError as exc:
            return StepOutcome(ok=False, seconds=time.perf_counter() - started,
                               error=_error_details(exc, executed), resources=_failed_resources(result_path),
                               compute_s=_cells_seconds(_executed_cells(executed)))
        except Exception as exc:  # kernel died, timeout, …: report it against the cell that was running
            cell, cell_id = _running_cell(executed)
            return StepOutcome(ok=False, seconds=time.perf_counter() - started,
                               compute_s=_cells_seconds(_executed_cells(executed)),
                               resources=_failed_resources(result_path),
                               error={"ename": type(exc).__name__, "evalue": str(exc), "cell": cell,
                                      "cell_id": cell_id, "line": None, "where": "kernel", "traceback": ""})
    if not result_path.exists():
        # papermill stops at a cell that raised SystemExit(0) and reports success, as a top-to-bottom
        # run of the notebook ends there: no epilogue ran, so there is no result.
        return StepOutcome(ok=True, seconds=time.perf_counter() - started, stopped=_system_exit(executed),
                           compute_s=_cells_seconds(nb.cells))
    result = json.loads(result_path.read_text())
    return StepOutcome(ok=True, seconds=time.perf_counter() - started, outputs=result.get("outputs", {}),
                       compute_s=_cells_seconds(nb.cells),
                       warnings=result.get("warnings", []), durations=result.get("durations", {}),
                       metrics=result.get("metrics", []), modules=result.get("modules"),
                       needs=result.get("needs", {}), resources=result.get("resources") or {})
