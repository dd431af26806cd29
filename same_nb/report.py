"""Human-readable renderings of service results for the terminal (rich tables or plain text)."""
from __future__ import annotations

import re

from same_nb.frontend.ir import Pipeline
from same_nb.local.progress import number_text, seconds_text, step_time_text
from same_nb.text import bytes_text


def _console():
    from rich.console import Console

    # soft_wrap: a diagnostic stays one line (greppable, clickable) whatever the terminal width;
    # only the table fits itself to the width.
    return Console(highlight=False, soft_wrap=True)


def _inputs(step) -> str:
    parts = []
    for i in step.inputs:
        parts.append(f"{i.name} ← {i.producer}" if i.kind == "variable" else f"{i.name} (param)")
    return "\n".join(parts) or "-"


def dag_lines(pipeline: Pipeline, levels: list[list[str]]) -> list[str]:
    lines = []
    for depth, group in enumerate(levels):
        lines.append(f"  {depth + 1}. " + "  |  ".join(group) + ("   (run in parallel)" if len(group) > 1 else ""))
    for e in pipeline.edges:
        label = ", ".join(e.reasons())
        lines.append(f"     {e.src} → {e.dst}  [{label}]")
    return lines


def print_inspection(insp) -> None:
    from rich.table import Table
    from rich.text import Text

    p = insp.pipeline
    console = _console()
    params = ", ".join(f"{x.name}: {x.type} = {x.default!r}" for x in p.parameters) or "none"
    console.print(Text(f"Pipeline {p.name}  ({p.notebook})"), style="bold")
    console.print(Text(f"Parameters: {params}"))
    table = Table(show_lines=True)
    for col in ("step", "cells", "inputs", "outputs", "imports", "params"):
        table.add_column(col)
    for s in p.steps:
        imports = sorted({i.top or i.module for i in s.imports + s.replay_imports})
        table.add_row(Text(s.name), Text(",".join(str(c.number) for c in s.cells if c.cell_type == "code")),
                      Text(_inputs(s)), Text(", ".join(s.outputs) or "-"), Text(", ".join(imports) or "-"),
                      Text(", ".join(s.params) or "-"))
    console.print(table)
    console.print(Text("DAG (steps on one line are independent):"))
    for line in dag_lines(p, insp.levels):
        console.print(Text(line))
    problems = [d for d in p.diagnostics if d.severity in ("error", "warning")]
    notes = [d for d in p.diagnostics if d.severity not in ("error", "warning")]
    if problems:
        console.print(Text(f"Diagnostics ({len(p.errors)} errors, {len(problems) - len(p.errors)} warnings):"))
        for d in problems:
            console.print(Text(d.render(), style="red" if d.severity == "error" else "yellow"))
    else:
        console.print(Text("No problems found."))
    for d in notes:                     # learned effects and other information: not problems
        console.print(Text(d.render(), style="cyan"))


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value or "-")


def print_runs(runs: list[dict], total: int, metric_columns: list[str] = ()) -> None:
    from rich.table import Table
    from rich.text import Text

    pipelines = {r["pipeline_name"] or "" for r in runs}
    # One pipeline (the runs of one notebook, mostly) is named once, in the title: a column repeating it
    # costs the width the other columns need in an 80-column terminal.
    one = next(iter(pipelines)) if len(pipelines) == 1 else None
    table = Table(title=Text(f"{len(runs)} of {total} runs" + (f" of {one}" if one else "")))
    named = any(r.get("name") for r in runs)
    swept = any(r.get("sweep_id") for r in runs)
    remote = any((r.get("target") or "local") != "local" for r in runs)
    # In a narrow terminal a cell wraps onto more lines rather than lose its end: a sweep id cut to
    # "quicks…" cannot be typed into `runs --sweep`. Dates break at their space, names and ids anywhere.
    for col in ("run", *(["name"] if named else []), *([] if one else ["pipeline"]), "status", "started",
                "duration", "steps", *(["target"] if remote else []), *(["sweep"] if swept else []),
                *metric_columns):
        table.add_column(col, overflow="fold", no_wrap=col in ("run", "status", "duration"),
                         min_width=10 if col == "started" else None)
    for r in runs:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(r.get("step_counts", {}).items()))
        dur = seconds_text(r["duration_s"]) if r.get("duration_s") is not None else "-"
        metrics = [number_text(r["metrics"][c]) if r.get("metrics", {}).get(c) is not None else "-"
                   for c in metric_columns]
        label = [Text(r.get("name") or "")] if named else []
        table.add_row(str(r["id"]), *label, *([] if one else [Text(r["pipeline_name"] or "")]), r["status"],
                      _when(r.get("started_at")), dur, counts, *([r.get("target") or "local"] if remote else []),
                      *([Text(r.get("sweep_id") or "")] if swept else []), *metrics)
    _console().print(table)


def print_sweep(table: dict) -> None:
    """``same-nb runs --sweep``: a row per run, its swept values, metrics and status; the best run starred."""
    import json

    from rich.table import Table
    from rich.text import Text

    best = table.get("best") or {}
    out = Table(title=f"sweep {table['sweep_id']}: {len(table['runs'])} runs")
    for col in ("", "run", *table["params"], "status", "duration", *table["columns"]):
        out.add_column(col)
    for r in table["runs"]:
        mark = "★" if best.get("run_id") == r["id"] else ""
        values = [Text(json.dumps(r["values"].get(n), ensure_ascii=False)) for n in table["params"]]
        metrics = [number_text(r["metrics"][c]) if r["metrics"].get(c) is not None else "-" for c in table["columns"]]
        dur = seconds_text(r["duration_s"]) if r.get("duration_s") is not None else "-"
        out.add_row(mark, str(r["id"]), *values, r["status"], dur, *metrics)
    console = _console()
    console.print(out)
    if best:
        way = "lowest" if best["direction"] == "min" else "highest"
        flip = "--maximize" if best["direction"] == "min" else "--minimize"
        if best["run_id"] is None:
            console.print(Text(f"No successful run logged {best['metric']}."))
        else:
            console.print(Text(f"★ best: run {best['run_id']}, {best['metric']} {number_text(best['value'])} "
                               f"({way} is best; {flip} to flip)"))


def print_sweep_result(result, stream=None) -> None:
    """After ``run --sweep``: one line per grid point (run, values, status, time), then the sweep's total."""
    import sys

    from same_nb.frontend.sweep import point_label

    out = stream or sys.stdout
    print(f"Sweep {result.sweep_id}: {len(result.runs)} of {len(result.plan.points)} runs", file=out)
    rows = [("run", "values", "status", "time", "executed steps")]
    for point, r in zip(result.values, result.runs):
        ran = [n for n, st in r.states.items() if st.status in ("success", "failed")]
        rows.append((str(r.run_id), point_label(point), r.status, seconds_text(r.seconds), ", ".join(ran) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  " + "  ".join(f"{c:<{w}}" for c, w in zip(row[:4], widths)) + f"  {row[4]}", file=out)
    for missing in result.not_started:
        print(f"not run: {point_label(missing['values'])}: {missing['why']}", file=out)
    for r in result.runs:
        for name, st in r.states.items():
            if st.error:
                from same_nb.local.progress import format_step_error

                print(f"run {r.run_id}: " + format_step_error(name, st), file=out)
    print(f"Sweep {result.sweep_id} {'succeeded' if result.ok else 'failed'} in {result.seconds:.1f}s; "
          f"see `same-nb runs --sweep {result.sweep_id}`", file=out)


def metrics_text(metrics: list[dict]) -> str:
    """A step's metrics, one line each: the last value logged, and how many were (a loss per epoch)."""
    last: dict[str, float] = {}
    count: dict[str, int] = {}
    for m in metrics:                   # in logging order
        last[m["name"]] = m["value"]
        count[m["name"]] = count.get(m["name"], 0) + 1
    return "\n".join(f"{name} {number_text(value)}" + (f" (last of {count[name]})" if count[name] > 1 else "")
                     for name, value in last.items())


WIDE_TABLE = 100        # console columns from which `show` has memory and CPU columns of their own


def step_resources_text(step: dict) -> tuple[str, str]:
    """The memory and CPU cells of a step run: its peak above its kernel's start and the data it loaded
    and saved ("120 MB" over "in 8 MB, out 40 MB"); its CPU time. "-" where nothing was measured."""
    peak, cpu = step.get("peak_rss_bytes"), step.get("cpu_s")
    data = [f"{label} {bytes_text(step[key])}" for key, label in (("bytes_in", "in"), ("bytes_out", "out"))
            if step.get(key)]
    memory = "\n".join([bytes_text(peak) if peak is not None else "-"] + ([", ".join(data)] if data else []))
    return memory, seconds_text(cpu) if cpu is not None else "-"


def print_run(run: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    label = f" “{run['name']}”" if run.get("name") else ""
    console.print(Text(f"Run {run['id']}{label} of {run['pipeline_name']}: {run['status']}"), style="bold")
    if run.get("note"):
        console.print(Text(f"Note: {run['note']}"))
    console.print(Text(f"Notebook: {run['notebook_path']} (sha256 {run['notebook_sha256'][:12]}…)"))
    params = ", ".join(f"{k}={number_text(v) if isinstance(v, float) and not v.is_integer() else repr(v)}"
                       for k, v in run["params"].items())
    console.print(Text(f"Parameters: {params or 'none'}"))
    console.print(Text(f"Started {_when(run.get('started_at'))}, by {run.get('user')} on {run.get('host')}"
                       + (f", git {run['git_commit'][:10]}" if run.get("git_commit") else "")))
    console.print(Text(f"Run folder: {run.get('run_dir')}"))
    table = Table(show_lines=True)
    with_metrics = any(s.get("metrics") for s in run["steps"])
    # Two more columns squeeze the outputs column until an output's name and hash break apart on a
    # narrow console (80 columns when piped): there the figures go under the step's time instead.
    apart = console.width >= WIDE_TABLE
    resources = ["memory", "CPU"] if apart else []
    for col in ("step", "status", "time", *resources, "why", "outputs", *(["metrics"] if with_metrics else [])):
        table.add_column(col)
    for s in run["steps"]:
        outs = "\n".join(f"{o['name']} {o['sha256'][:10]} ({o['kind']}, {o['size']} B)" for o in s["outputs"])
        dur = step_time_text(s.get("duration_s"), s.get("compute_s"), s.get("kernel_wait_s"))
        metrics = [Text(metrics_text(s.get("metrics") or []) or "-")] if with_metrics else []
        status = s["status"] + (" (cache)" if s.get("cache_hit") and s["status"] != "cached" else "")
        memory, cpu = step_resources_text(s)
        if not apart:
            dur += "".join(f"\n{text}" for text in (f"memory {memory}", f"CPU {cpu}") if not text.endswith(" -"))
        table.add_row(Text(s["step_name"]), status, dur, *([memory, cpu] if apart else []),
                      Text(s.get("reason") or "-"), Text(outs or "-"), *metrics)
    console.print(table)
    for s in run["steps"]:
        err = s.get("error")
        if err:
            where = ", ".join(x for x in (f"cell {err.get('cell')}" if err.get("cell") else "",
                                          f"line {err.get('line')}" if err.get("line") else "") if x)
            console.print(Text(f"error in {s['step_name']} ({where or err.get('where', '')}): "
                               f"{err.get('ename')}: {err.get('evalue')}", style="red"))
            if s.get("executed_notebook"):
                console.print(Text(f"  executed notebook: {s['executed_notebook']}"))


_LOCK_SOURCES = {"import": "a cell imports it", "loaded": "loaded when the step last ran locally",
                 "serializer": "an output of the step needs it to cross", "input": "an input needs it",
                 "pip": "a !pip install line", "executor": "a pod needs it to run the step notebook",
                 "producer": "a step its inputs come from has it"}


def render_lock(result) -> str:
    """``same-nb lock``: per step, each direct requirement with what put it there."""
    lines = [f"Locked {len(result.steps)} steps for Python {result.python_version} on {result.platform} "
             f"into {result.out_dir}/envs/"]
    used: set[str] = set()
    for name, lock in result.steps.items():
        how = "fallback, no hashes" if lock.fallback else "uv, with hashes"
        local = f"; ships local modules {', '.join(p.name for p in lock.local_modules)}" if lock.local_modules else ""
        lines.append(f"  {name}: {len(lock.pins)} direct pins ({how}), sha256 {lock.lock_sha256[:16]}{local}")
        sources = getattr(lock, "sources", None) or {}
        entries = sorted(lock.pins + lock.unpinned, key=str.lower)
        width = max((len(e) for e in entries), default=0)
        for entry in entries:
            found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", entry)
            labels = sources.get(re.sub(r"[-_.]+", "-", found.group(0)).lower(), []) if found else []
            used.update(labels)
            lines.append(f"      {entry:<{width}}  ({', '.join(labels)})" if labels else f"      {entry}")
        for module in getattr(lock, "runtime_modules", None) or []:
            lines.append(f"      {module:<{width}}  (ships with the runtime, not pinned)")
    if used:
        lines.append("Sources: " + "; ".join(f"{k} = {v}" for k, v in _LOCK_SOURCES.items() if k in used))
    return "\n".join(lines)
