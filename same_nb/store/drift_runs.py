"""Drift between recorded runs: the profiles of their artifacts (``<store>/ab/<sha>.profile.json``) compared per
step and variable (store/drift.py), the baseline a run is measured against, the runs whose inputs
drifted, and same.yaml's ``checks`` evaluated on a finished run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from same_nb.errors import SameError
from same_nb.runtime.profile import PROFILED_TYPES, read_profile
from same_nb.store.drift import compare_profiles, schema_text, worst_column

_PAGE = 200


def _root(run: dict, record: dict) -> Path:
    location = record.get("location")
    if location and "://" not in location:
        return Path(location).parent.parent          # <root>/<sha[:2]>/<sha>
    return Path(run["notebook_path"]).parent / ".same" / "artifacts"


def run_artifacts(run: dict, direction: str = "outputs") -> dict[tuple[str, str], dict]:
    """(step, variable) → its record, for the run's DataFrame, Series and array artifacts; a variable
    several steps pass on (each changing it) appears once per step."""
    found = {}
    for step in run.get("steps", []):
        for record in step.get(direction, []):
            if record.get("type") in PROFILED_TYPES and record.get("role") in (None, "variable"):
                found[(step["step_name"], record["name"])] = record
    return found


def drift_between(store: Any, baseline: int | dict, run: int | dict, direction: str = "outputs",
                  variables: list[str] | None = None) -> dict:
    """Per (step, variable) both runs have: schema changes and column drift from ``baseline`` to ``run``.
    ``{"baseline", "run", "direction", "artifacts": [{step, variable, sha256: [a, b], identical,
    schema, rows, columns, sampled}], "unprofiled": [{step, variable, run}]}``."""
    base, new = _get(store, baseline), _get(store, run)
    arts_a, arts_b = run_artifacts(base, direction), run_artifacts(new, direction)
    artifacts, unprofiled = [], []
    for key, rec_b in arts_b.items():
        rec_a = arts_a.get(key)
        if rec_a is None or (variables is not None and key[1] not in variables):
            continue
        step, variable = key
        entry = {"step": step, "variable": variable, "sha256": [rec_a["sha256"], rec_b["sha256"]]}
        if rec_a["sha256"] == rec_b["sha256"]:
            artifacts.append({**entry, "identical": True, "schema": [], "columns": [], "rows": None})
            continue
        prof_a = read_profile(_root(base, rec_a), rec_a["sha256"], variable)
        prof_b = read_profile(_root(new, rec_b), rec_b["sha256"], variable)
        missing = [r["id"] for r, p in ((base, prof_a), (new, prof_b)) if p is None]
        if missing:
            unprofiled += [{"step": step, "variable": variable, "run": r} for r in missing]
            continue
        artifacts.append({**entry, "identical": False, **compare_profiles(prof_a, prof_b)})
    return {"baseline": base["id"], "run": new["id"], "direction": direction, "artifacts": artifacts,
            "unprofiled": unprofiled}


def _get(store: Any, run: int | dict) -> dict:
    if isinstance(run, dict):
        return run
    found = store.get_run(run)
    if found is None:
        raise SameError(f"there is no run {run}")
    return found


def previous_success(store: Any, run: dict) -> dict | None:
    """The newest successful run of the same notebook started before ``run``."""
    offset = 0
    while True:
        page = store.list_runs(limit=_PAGE, offset=offset, notebook_path=run["notebook_path"])
        for candidate in page:
            if candidate["id"] < run["id"] and candidate["status"] == "success":
                return store.get_run(candidate["id"])
        if len(page) < _PAGE:
            return None
        offset += _PAGE


def worst(drift: dict) -> dict | None:
    """The most drifted column over every artifact: {step, variable, column, psi}, or None."""
    best = None
    for art in drift["artifacts"]:
        column = worst_column(art)
        if column is not None and (best is None or column["psi"] > best["psi"]):
            best = {"step": art["step"], "variable": art["variable"], "column": column["name"],
                    "psi": column["psi"]}
    return best


def drifted_runs(store: Any, *, notebook_path: str | Path | None = None, folder: str | Path | None = None,
                 baseline: int | None = None, limit: int = 20, offset: int = 0, threshold: float = 0.1) -> dict:
    """``same-nb runs --drift``: of the newest ``limit`` runs, those whose step inputs drifted from the
    baseline (``baseline`` or each run's previous successful run of its notebook) by at least
    ``threshold`` PSI or changed schema; each with its worst column.
    ``{"runs": [...], "checked": n, "no_baseline": [ids], "threshold": t, "baseline": id or None}``."""
    fixed = _get(store, baseline) if baseline is not None else None
    listed = store.list_runs(limit=limit, offset=offset, notebook_path=notebook_path, folder=folder)
    found, no_baseline = [], []
    for summary in listed:
        if summary["status"] in ("pending", "running") or (fixed is not None and summary["id"] == fixed["id"]):
            continue
        run = store.get_run(summary["id"])
        base = fixed or previous_success(store, run)
        if base is None:
            no_baseline.append(run["id"])
            continue
        drift = drift_between(store, base, run, direction="inputs")
        top = worst(drift)
        schema = [{"step": a["step"], "variable": a["variable"], **c} for a in drift["artifacts"] for c in a["schema"]]
        if schema or (top is not None and top["psi"] >= threshold):
            found.append({"id": run["id"], "name": run.get("name"), "status": run["status"],
                          "notebook_path": run["notebook_path"],
                          "created_at": run["created_at"], "baseline": base["id"], "worst": top, "schema": schema})
    return {"runs": found, "checked": len(listed), "no_baseline": no_baseline, "threshold": threshold,
            "baseline": fixed["id"] if fixed else None}


def evaluate_checks(store: Any, run_id: int, checks: dict) -> dict:
    """same.yaml ``checks`` on a finished run, against its baseline: ``{"status": "ok" | "warn" | "fail" |
    "no-baseline", "baseline", "findings": [{level, step, variable, column, statistic, value,
    threshold, message}], "unprofiled": [...]}``."""
    run = _get(store, run_id)
    wanted = checks.get("baseline", "previous")
    base = previous_success(store, run) if wanted == "previous" else store.get_run(int(wanted))
    if base is None:
        why = ("no earlier successful run of this notebook" if wanted == "previous"
               else f"checks.baseline: there is no run {wanted}")
        return {"status": "no-baseline", "baseline": None, "findings": [], "unprofiled": [], "note": why}
    drift_cfg = checks.get("drift") or {}
    drift = drift_between(store, base, run, variables=drift_cfg.get("variables"))
    findings = []
    schema_level = checks.get("schema", "warn")
    for art in drift["artifacts"]:
        where = f"step '{art['step']}', variable '{art['variable']}'"
        if schema_level != "off":
            for change in art["schema"]:
                findings.append({"level": schema_level, "step": art["step"], "variable": art["variable"],
                                 "column": change["column"], "statistic": "schema", "value": change["change"],
                                 "threshold": None, "message": f"{where}: {schema_text(change)}"})
        for column in art["columns"]:
            psi = column.get("psi")
            if psi is None:
                continue
            for level, key in (("fail", "psi_fail"), ("warn", "psi_warn")):
                limit = drift_cfg.get(key)
                if limit is not None and psi > limit:
                    findings.append({"level": level, "step": art["step"], "variable": art["variable"],
                                     "column": column["name"], "statistic": "psi", "value": psi,
                                     "threshold": limit, "message":
                                     f"{where}, column {column['name']!r}: PSI {psi:.4g} > {key} {limit:g} "
                                     f"(baseline run {base['id']})"})
                    break
    levels = {f["level"] for f in findings}
    status = "fail" if "fail" in levels else "warn" if "warn" in levels else "ok"
    return {"status": status, "baseline": base["id"], "findings": findings, "unprofiled": drift["unprofiled"]}
