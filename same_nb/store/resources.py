"""A step run's resource columns (``peak_rss_bytes``, ``cpu_s``, ``bytes_in``, ``bytes_out``) from what
the kernel measured (``runtime/resources.py``) and the artifacts the step run links; and how
``compare`` shows them and flags growth.

Bytes are the sizes of the distinct artifacts (variables, files, datasets) on the step run's edges,
per direction. A cached step ran nothing: no memory or CPU, and it loaded nothing (``bytes_in`` None),
but ``bytes_out`` is the size of the outputs it reused, which later steps load as if it had run.
Standard library only (the lean store records cached runs with it).
"""
from __future__ import annotations

import math

from same_nb.runtime.resources import artifact_bytes
from same_nb.text import bytes_text, seconds_text

# compare flags a step whose peak memory or time more than doubled. Growth below these floors is
# never flagged: small figures move with the interpreter, the allocator and the machine's load
# (a 2 MB step at 5 MB, or 0.1 s at 0.3 s, says nothing about the step).
GROWTH_RATIO = 2.0
MEMORY_FLOOR_BYTES = 20_000_000
TIME_FLOOR_S = 0.5

COLUMNS = ("peak_rss_bytes", "cpu_s", "bytes_in", "bytes_out")


def step_resources(*, status: str, inputs: list[dict], outputs: list[dict],
                   measured: dict | None) -> dict:
    measured = measured or {}
    peak, cpu = measured.get("peak_rss_bytes"), measured.get("cpu_s")
    values = {
        "peak_rss_bytes": int(peak) if isinstance(peak, (int, float)) and peak >= 0 else None,
        "cpu_s": float(cpu) if isinstance(cpu, (int, float)) and math.isfinite(cpu) and cpu >= 0 else None,
        "bytes_in": artifact_bytes(inputs),
        "bytes_out": artifact_bytes(outputs),
    }
    if status == "cached":
        values.update(peak_rss_bytes=None, cpu_s=None, bytes_in=None)
    return values


def step_time(step: dict) -> float | None:
    """A step run's own time: its cells' compute when measured, else its wall time; a cache hit ran
    nothing, so it has none to compare."""
    if not step or step.get("cache_hit") or step.get("status") == "cached":
        return None
    return step.get("compute_s") if step.get("compute_s") is not None else step.get("duration_s")


def compare_resources(steps: list[dict]) -> dict[str, list]:
    """One value per run (None where unknown) of each figure, for ``compare``'s step entry."""
    return {"peak_rss_bytes": [s.get("peak_rss_bytes") for s in steps],
            "cpu_s": [s.get("cpu_s") for s in steps],
            "time_s": [step_time(s) for s in steps],
            "bytes_in": [s.get("bytes_in") for s in steps],
            "bytes_out": [s.get("bytes_out") for s in steps]}


def growth_flags(run_ids: list[int], steps: dict[str, dict]) -> list[dict]:
    """Steps whose peak memory or time grew more than 2x from the first run to a later one."""
    flags = []
    for name, entry in steps.items():
        figures = entry.get("resources") or {}
        for key, what, floor in (("peak_rss_bytes", "peak memory", MEMORY_FLOOR_BYTES),
                                 ("time_s", "time", TIME_FLOOR_S)):
            values = figures.get(key) or []
            if not values or values[0] is None:
                continue
            for run_id, value in zip(run_ids[1:], values[1:]):
                if value is None or value - values[0] < floor or value <= GROWTH_RATIO * values[0]:
                    continue
                flags.append({"step": name, "what": what, "runs": [run_ids[0], run_id],
                              "from": values[0], "to": value,
                              "ratio": round(value / values[0], 2) if values[0] else None})
    return flags


def figure_text(key: str, value) -> str:
    if value is None:
        return "—"
    if key in ("peak_rss_bytes", "bytes_in", "bytes_out"):
        return bytes_text(value)
    return seconds_text(value)


def flag_text(flag: dict, two_runs: bool) -> str:
    """``train: peak memory 2.4x (120 MB → 290 MB)``."""
    key = "peak_rss_bytes" if flag["what"] == "peak memory" else "time_s"
    ratio = f" {flag['ratio']:g}x" if flag["ratio"] else " grew"
    where = "" if two_runs else f" from run {flag['runs'][0]} to run {flag['runs'][1]}"
    return (f"{flag['step']}: {flag['what']}{ratio}{where} "
            f"({figure_text(key, flag['from'])} → {figure_text(key, flag['to'])})")


_LABELS = (("peak_rss_bytes", "peak memory"), ("cpu_s", "CPU"), ("time_s", "time"),
           ("bytes_in", "data in"), ("bytes_out", "data out"))


def resources_line(figures: dict, show) -> str | None:
    """``  resources: peak memory 120 MB → 290 MB, CPU 1.2 s → 3.4 s, …``: the figures that differ as
    shown between the runs (a step cached in both has only its equal data out: nothing to say)."""
    parts = [f"{label} {show(figures[key], lambda v, k=key: figure_text(k, v))}"
             for key, label in _LABELS if len({figure_text(key, v) for v in figures.get(key) or [None]}) > 1]
    return f"  resources: {', '.join(parts)}" if parts else None
