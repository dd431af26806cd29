"""`same_nb.log_metric`: printed when run interactively, recorded per step run inside a pipeline."""
from __future__ import annotations

import math
import time

_recorded: list[dict] = []
_active = False          # True between a step's prologue and epilogue


def log_metric(name: str, value, step: int | None = None) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("log_metric: the metric name must be a non-empty string")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"log_metric({name!r}, …): the value must be a number, got "
                         f"{type(value).__name__}") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"log_metric({name!r}, …): the value must be finite, got {number}")
    print(f"metric {name} = {number:g}" + (f" (step {step})" if step is not None else ""))
    if _active:
        _recorded.append({"name": name, "value": number, "step": step, "logged_at": time.time()})


def begin() -> None:
    global _active
    _active = True
    _recorded.clear()


def collect(namespace: dict, names: list[str]) -> list[dict]:
    """The step's logged metrics plus Kale-style pipeline-metrics variables it defines."""
    global _active
    for name in names:
        if name in namespace and not any(m["name"] == name for m in _recorded):
            try:
                log_metric(name, namespace[name])
            except ValueError:
                pass
    _active = False
    out = list(_recorded)
    _recorded.clear()
    return out
