"""A parameter sweep's runs as one table: each run's swept parameter values, its metrics (the last
value logged), its status, and the best run by a chosen metric.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from same_nb.errors import SameError
from same_nb.store.schema import runs

# A metric whose name says it is a cost is best when lowest; any other (accuracy, f1, auc, r2, …) when highest.
_LOWER_IS_BETTER = re.compile(r"(loss|err|mse|mae|rmse|mape|latency|time|duration|cost|perplexity|regret)",
                              re.IGNORECASE)


def default_direction(metric: str) -> str:
    """"min" for names like loss, error, rmse, latency; "max" otherwise."""
    return "min" if _LOWER_IS_BETTER.search(metric) else "max"


def sweep_runs(store: Any, sweep_id: str) -> list[dict]:
    """The sweep's runs, oldest first (grid order)."""
    query = select(runs).where(runs.c.sweep_id == sweep_id).order_by(runs.c.id)
    with store._tx(write=False) as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        started, finished = row.get("started_at"), row.get("finished_at")
        row["duration_s"] = (finished - started).total_seconds() if started and finished else None
    return rows


def sweep_table(store: Any, sweep_id: str, best: str | None = None, direction: str | None = None) -> dict:
    """``{"sweep_id", "params": [swept names], "columns": [metrics], "runs": [...], "best": {...} | None}``.
    Each run carries ``values`` (its swept parameters) and ``metrics`` ({column: last value}); a metric
    logged by several steps becomes ``step.name``. ``best`` names the metric that picks the best run,
    ``direction`` "min" or "max" (default: :func:`default_direction`)."""
    if not isinstance(sweep_id, str) or not sweep_id.strip():
        raise SameError("a sweep id is needed (see the SWEEP column of `same-nb runs`)")
    listed = sweep_runs(store, sweep_id)
    if not listed:
        raise SameError(f"there is no sweep {sweep_id!r} in this store (see the sweep column of `same-nb runs`)")
    rows = store.run_metrics([r["id"] for r in listed])
    steps_of: dict[str, set[str]] = {}
    for m in rows:
        steps_of.setdefault(m["name"], set()).add(m["step_name"])
    values: dict[int, dict[str, float]] = {}
    for m in rows:            # in logging order: the last value wins
        key = m["name"] if len(steps_of[m["name"]]) == 1 else f"{m['step_name']}.{m['name']}"
        values.setdefault(m["run_id"], {})[key] = m["value"]
    columns = sorted({k for v in values.values() for k in v})
    # The swept parameters are those whose value differs between the runs (all of them for one run).
    names = list(listed[0]["params"])
    varying = [n for n in names if len({_key(r["params"].get(n)) for r in listed}) > 1] or (
        names if len(listed) == 1 else [])
    for run in listed:
        run["metrics"] = values.get(run["id"], {})
        run["values"] = {n: run["params"].get(n) for n in varying}
    chosen = None
    if best is not None:
        if best not in columns:
            shown = ", ".join(columns) or "none (log some with same_nb.log_metric)"
            raise SameError(f"no run of sweep {sweep_id!r} logged a metric {best!r}; its metrics: {shown}")
        direction = direction or default_direction(best)
        if direction not in ("min", "max"):
            raise SameError(f"direction must be min or max, got {direction!r}")
        scored = [r for r in listed if r["status"] == "success" and best in r["metrics"]]
        if scored:
            pick = (min if direction == "min" else max)(scored, key=lambda r: r["metrics"][best])
            chosen = {"run_id": pick["id"], "metric": best, "direction": direction,
                      "value": pick["metrics"][best]}
        else:
            chosen = {"run_id": None, "metric": best, "direction": direction, "value": None}
    return {"sweep_id": sweep_id, "params": varying, "columns": columns, "runs": listed, "best": chosen}


def _key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=repr)
