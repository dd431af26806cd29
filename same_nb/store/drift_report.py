"""Terminal text for drift: the section `compare` adds, `runs --drift`, and a run's data checks."""
from __future__ import annotations

from same_nb.store.drift import describe_column, psi_reading, schema_text
from same_nb.text import number_text


def render_drift(drift: dict, all_columns: bool = False) -> str:
    """The drift section of ``same-nb compare A B``: per changed DataFrame/Series/array, its schema
    changes and the columns whose PSI is not stable (every column with ``all_columns``)."""
    lines = [f"data drift, run {drift['baseline']} → run {drift['run']} (PSI over deciles; "
             f"<0.1 stable, 0.1–0.25 moderate, >0.25 significant):"]
    changed = [a for a in drift["artifacts"] if not a["identical"]]
    if not drift["artifacts"]:
        lines.append("  no DataFrame, Series or array output in both runs")
    elif not changed:
        lines.append(f"  {len(drift['artifacts'])} profiled output(s) identical")
    for art in changed:
        rows = art["rows"]
        head = f"  {art['step']}.{art['variable']}"
        if rows and rows[0] != rows[1]:
            head += f": rows {number_text(rows[0])} → {number_text(rows[1])}"
        if art.get("sampled"):
            head += " (statistics from a sample)"
        body = [f"    schema: {schema_text(c)}" for c in art["schema"]]
        shown = [c for c in art["columns"] if all_columns or psi_reading(c["psi"]) not in ("stable", "n/a")]
        body += [f"    {_name(c['name'])}: {describe_column(c)}" for c in sorted(shown, key=lambda c: -(c["psi"] or 0))]
        quiet = len(art["columns"]) - len(shown)
        if quiet:
            body.append(f"    {quiet} column(s) stable")
        lines += [head, *body]
    for miss in drift["unprofiled"]:
        lines.append(f"  {miss['step']}.{miss['variable']}: no profile in run {miss['run']} (saved before "
                     f"profiles existed, or with SAME_NB_PROFILE=0)")
    return "\n".join(lines)


def render_drifted_runs(result: dict) -> str:
    """``same-nb runs --drift``: one line per drifted run with its worst column."""
    against = (f"run {result['baseline']}" if result["baseline"] is not None
               else "each run's previous successful run")
    lines = [f"runs whose step inputs drifted from {against} (PSI ≥ {number_text(result['threshold'])} "
             f"or a schema change), of the {result['checked']} newest:"]
    if not result["runs"]:
        lines.append("  none")
    for run in result["runs"]:
        worst = run["worst"]
        text = (f"{worst['step']}.{worst['variable']}[{worst['column']!r}] PSI {number_text(worst['psi'])} "
                f"({psi_reading(worst['psi'])})" if worst else "no comparable column")
        schema = f"; {len(run['schema'])} schema change(s): {schema_text(run['schema'][0])}" if run["schema"] else ""
        label = f" ({run['name']})" if run.get("name") else ""
        lines.append(f"  run {run['id']}{label} vs run {run['baseline']}: worst {text}{schema}")
    if result["no_baseline"]:
        lines.append(f"  no baseline for run(s) {', '.join(map(str, result['no_baseline']))}")
    return "\n".join(lines)


def render_checks(report: dict) -> list[str]:
    """One line per finding of same.yaml's ``checks`` ("warning: …" / "error: …"), or a note."""
    if report["status"] == "no-baseline":
        return [f"note: data checks skipped: {report['note']}"]
    lines = [("error: data check failed: " if f["level"] == "fail" else "warning: data check: ") + f["message"]
             for f in report["findings"]]
    lines += [f"note: data checks: {u['step']}.{u['variable']} has no profile in run {u['run']}"
              for u in report["unprofiled"]]
    return lines


def _name(name: str) -> str:
    """A column name as typed, or quoted when it holds anything a line of output could be confused by."""
    return name if name.isprintable() and name.strip() == name and name and ":" not in name else repr(name)
