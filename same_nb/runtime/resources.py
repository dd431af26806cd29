"""Peak memory and CPU time of a step's execution, measured inside its kernel (or pod) from the
step's first line (``load_inputs``) to its last (``save_outputs``): the kernel's start-up, its warm-up
imports and, for a kernel forked from the zygote, everything the zygote did are outside the window.

How, and why this way:
- Memory: the kernel's own peak is its high-water mark (``VmHWM``) after resetting it to the current
  RSS at the step's start (``/proc/self/clear_refs`` ← ``5``, Linux ≥ 4.0). The kernel tracks it
  exactly, at no cost, spikes included; sampling from a thread would miss short spikes and make the
  user's kernel multi-threaded (``os.fork`` in their code then warns or deadlocks). ``ru_maxrss`` of
  ``RUSAGE_SELF`` cannot be reset, and a forked kernel inherits the zygote's high-water mark.
- The figure is the peak *above the kernel's RSS at the step's start*: that RSS is the interpreter,
  ipykernel and the modules imported before the step, which differ by kernel mode (a forked kernel
  holds every module the zygote preloaded for the whole pipeline, shared copy-on-write) and not by
  what the step does. So a step reports the same figure in ``--kernel fork`` and ``--kernel fresh``,
  and ``compare`` sees the step's growth, not a change of kernel mode.
- Children (joblib/multiprocessing workers, subprocesses): live descendants add their ``VmHWM``;
  children already reaped add ``RUSAGE_CHILDREN``'s ``ru_maxrss`` (the largest one) when it rose during
  the step. Peaks of several processes are summed, so the tree's figure is an upper bound (they need
  not peak together, and pages shared after a plain ``fork`` count once per process): the safe side
  for sizing a pod.
- CPU: user + system time of the kernel, of its reaped descendants (``RUSAGE_CHILDREN``, which counts
  children that exited before the step ended) and of live descendants (``/proc/<pid>/stat`` utime,
  stime, cutime, cstime), as the difference between the step's start and end.
- Not Linux (no ``/proc``): None for both, rather than a figure that misses the children or the reset.

Standard library only.
"""
from __future__ import annotations

import json
import os
import sys

try:
    import resource
except ImportError:                 # Windows
    resource = None

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_started: dict | None = None
FAILED_RESOURCES = "resources.json"   # beside the step's result: the figures of a step whose cell raised


def supported() -> bool:
    return resource is not None and os.path.exists("/proc/self/status") and os.path.exists("/proc/self/stat")


def _status_kb(pid: int | str, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _stat_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of a live process, in seconds (0 when it just ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            raw = f.read()
        fields = raw[raw.rindex(")") + 2:].split()
        return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid``: from ``/proc/<pid>/task/*/children`` when the kernel has it, else
    a scan of every process's parent."""
    found: list[int] = []
    frontier = [pid]
    scan: dict[int, list[int]] | None = None
    while frontier:
        parent = frontier.pop()
        kids = _children(parent)
        if kids is None:
            if scan is None:
                scan = _parents()
            kids = scan.get(parent, [])
        found += kids
        frontier += kids
    return found


def _children(pid: int) -> list[int] | None:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    kids: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                kids += [int(k) for k in f.read().split()]
        except FileNotFoundError:
            return None                       # kernel without CONFIG_PROC_CHILDREN
        except (OSError, ValueError):
            continue                          # the thread just ended
    return kids


def _parents() -> dict[int, list[int]]:
    by_parent: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    raw = f.read()
                ppid = int(raw[raw.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            by_parent.setdefault(ppid, []).append(int(entry))
    return by_parent


def _cpu_now(live: list[int]) -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
            + sum(_stat_cpu(pid) for pid in live))


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def begin() -> None:
    """Mark the step's start (``load_inputs``)."""
    global _started
    if not supported():
        _started = None
        return
    me = os.getpid()
    live = descendants(me)
    hwm_before = _status_kb("self", "VmHWM")
    _started = {
        "pid": me,
        "reset": _reset_peak(),
        "hwm_before_kb": hwm_before,
        "rss_kb": _status_kb("self", "VmRSS"),
        "children": {pid: _status_kb(pid, "VmRSS") or 0 for pid in live},
        "reaped_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "cpu_s": _cpu_now(live),
    }


def on_failure(path: str) -> None:
    """Write the figures to ``path`` if a cell of the step raises: papermill stops there, so the
    epilogue that reports them never runs (an IPython hook; nothing outside a kernel)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return

    def written(result) -> None:
        if getattr(result, "error_in_exec", None) is None and getattr(result, "error_before_exec", None) is None:
            return
        try:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(end(), f)
        except OSError:
            pass                     # no figures is better than a failed step that fails differently

    shell.events.register("post_run_cell", written)


def end() -> dict:
    """The step's figures since :func:`begin`: ``{"peak_rss_bytes", "cpu_s"}``, None where unknown."""
    started = _started
    if not started or started["pid"] != os.getpid() or not supported():
        return {"peak_rss_bytes": None, "cpu_s": None}
    live = descendants(started["pid"])
    cpu = max(0.0, _cpu_now(live) - started["cpu_s"])
    return {"peak_rss_bytes": _peak_kb(started, live), "cpu_s": round(cpu, 6)}


def _peak_kb(started: dict, live: list[int]) -> int | None:
    hwm, rss0 = _status_kb("self", "VmHWM"), started["rss_kb"]
    if hwm is None or rss0 is None:
        return None
    if not started["reset"] and (started["hwm_before_kb"] is None or hwm <= started["hwm_before_kb"]):
        return None                  # the mark predates the step and was not reset: the step's peak is unknown
    peak = max(0, hwm - rss0)
    for pid in live:
        child = _status_kb(pid, "VmHWM") or 0
        peak += max(0, child - started["children"].get(pid, 0))
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if reaped > started["reaped_maxrss_kb"]:
        peak += reaped
    return peak * 1024


def artifact_bytes(records: list[dict]) -> int:
    """Total size of the distinct artifacts (by sha256) among ``records``."""
    sizes = {r.get("sha256"): r.get("size") for r in records}
    return sum(int(s) for s in sizes.values() if isinstance(s, (int, float)) and s >= 0)


METRIC_PREFIX = "same-nb."


def pod_metrics(result: dict, inputs: list[dict]) -> dict[str, float]:
    """What a Kubeflow step component logs to its Metrics output: the step's figures as the kernel
    measured them (the same as a local run records), its artifact bytes, and the whole task's process
    tree (the component and its reaped kernel: start-up and warm-up included; peaks summed, an upper
    bound), which is what a pod's memory limit must hold. Unknown figures are left out."""
    files = result.get("files", [])
    figures = dict(result.get("resources") or {})
    figures["bytes_in"] = artifact_bytes([*inputs, *result.get("datasets", []),
                                          *(f for f in files if f.get("direction") == "in")])
    figures["bytes_out"] = artifact_bytes([*result.get("outputs", {}).values(),
                                           *(f for f in files if f.get("direction") != "in")])
    if supported():
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures["task_peak_rss_bytes"] = (own.ru_maxrss + kids.ru_maxrss) * 1024
        figures["task_cpu_s"] = round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 6)
    return {METRIC_PREFIX + k: float(v) for k, v in figures.items() if isinstance(v, (int, float))}
