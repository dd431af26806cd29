"""Lineage queries over the run store: where a file, value or hash came from (``trace``), recursively
across runs, rendered as a text tree, JSON or graphviz DOT.

Lineage edges point at sha256 hashes, so an input is traced to whichever step run (in any run)
produced those bytes; the newest executed producer wins.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, literal, select

from same_nb.errors import SameError
from same_nb.store.resources import compare_resources, flag_text, growth_flags, resources_line
from same_nb.store.schema import artifacts, runs, step_run_artifacts, step_runs
from same_nb.text import number_text

_SHA_PREFIX = re.compile(r"[0-9a-f]{8,64}")
_RUN_STEP_VAR = re.compile(r"(\d+):([^:]+):(.+)")
_PRODUCED = ("success", "cached")


def trace(store: Any, target: str, *, cwd: Path | None = None, max_depth: int = 500) -> dict:
    """The upstream lineage of ``target``: a file path, a sha256 (prefix of 8+ hex digits) or
    ``RUN:STEP:VARIABLE``. Returns a tree of artifact nodes (see :func:`render_text`)."""
    with store.engine.connect() as conn:
        root = _resolve(conn, target, Path(cwd or Path.cwd()))
        producer = root.pop("producer_id")
        if producer is None:
            producer = conn.execute(select(_producer(root["sha256"]))).scalar()
        tracer = _Tracer(conn, producer, max_depth)
    tracer.expand(root, producer, depth=0, max_depth=max_depth)
    return root


def _producer(sha: Any) -> Any:
    """The newest step run that produced ``sha`` (executed before cached), as a scalar subquery."""
    o, p = step_run_artifacts.alias("o"), step_runs.alias("p")
    return (select(p.c.id).join(o, o.c.step_run_id == p.c.id)
            .where(o.c.artifact_sha256 == sha, o.c.direction == "out", p.c.status.in_(_PRODUCED))
            .order_by(p.c.cache_hit.asc(), p.c.id.desc()).limit(1).scalar_subquery())


class _Tracer:
    """Loads the whole upstream closure in three queries (a recursive CTE over producers, their
    input edges, their details), then builds the tree in memory."""

    def __init__(self, conn: Connection, root_producer: int | None, max_depth: int):
        self.expanded: set[int] = set()
        self.details: dict[int, dict] = {}
        self.inputs: dict[int, list[dict]] = {}
        if root_producer is None:
            return
        i = step_run_artifacts.alias("i")
        walk = select(literal(root_producer, step_runs.c.id.type).label("id"),
                      literal(0).label("depth")).cte("walk", recursive=True)
        walk = walk.union(select(_producer(i.c.artifact_sha256), walk.c.depth + 1)
                          .select_from(walk.join(i, i.c.step_run_id == walk.c.id))
                          .where(i.c.direction == "in", walk.c.depth < max_depth))
        ids = select(walk.c.id).where(walk.c.id.is_not(None))
        for row in conn.execute(
                select(i.c.step_run_id, i.c.name, i.c.role, i.c.artifact_sha256.label("sha256"),
                       artifacts.c.kind, artifacts.c.size, artifacts.c.location,
                       _producer(i.c.artifact_sha256).label("producer_id"))
                .join(artifacts, artifacts.c.sha256 == i.c.artifact_sha256)
                .where(i.c.step_run_id.in_(ids), i.c.direction == "in")
                .order_by(i.c.step_run_id, i.c.role, i.c.name)).mappings():
            self.inputs.setdefault(row["step_run_id"], []).append(dict(row))
        sr, r = step_runs.c, runs.c
        for row in conn.execute(
                select(sr.id, sr.run_id, sr.step_name, sr.status, sr.cache_hit, sr.finished_at,
                       sr.code_sha256, sr.cache_info, r.notebook_path, r.git_commit)
                .join(runs).where(sr.id.in_(ids))).mappings():
            info = row["cache_info"] or {}
            self.details[row["id"]] = {
                "step_run_id": row["id"], "run_id": row["run_id"], "step": row["step_name"],
                "status": row["status"], "cache_hit": bool(row["cache_hit"]),
                "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
                "code_sha256": row["code_sha256"], "cells": info.get("cells", {}),
                "parameters": info.get("params", {}), "packages": info.get("packages", {}),
                "notebook": row["notebook_path"], "git_commit": row["git_commit"]}

    def expand(self, node: dict, producer_id: int | None, depth: int, max_depth: int,
               shown=lambda producer_id: True, check_file=None) -> None:
        """Fill ``node``'s producer and inputs, recursively. ``shown`` hides producers (a server shows only
        its root's runs); ``check_file(child, producer)`` replaces the modified-file check."""
        if producer_id is None or not shown(producer_id):
            node["producer"] = None
            return
        if producer_id in self.expanded or depth >= max_depth:
            node["producer"] = {"step_run_id": producer_id, "shown_above": depth < max_depth,
                                "depth_limit": depth >= max_depth}
            return
        self.expanded.add(producer_id)
        node["producer"] = self.details[producer_id]
        node["inputs"] = []
        for edge in self.inputs.get(producer_id, []):
            child = _node(edge)
            (check_file or _flag_modified)(child, node["producer"])
            node["inputs"].append(child)
            self.expand(child, edge["producer_id"], depth + 1, max_depth, shown, check_file)


def _node(edge: dict) -> dict:
    return {"name": edge["name"], "role": edge["role"] or "variable", "sha256": edge["sha256"],
            "kind": edge.get("kind"), "size": edge.get("size"), "location": edge.get("location"),
            "modified": None}


def _resolve(conn: Connection, target: str, cwd: Path) -> dict:
    """The root node for ``target``, with ``producer_id`` when the target names its producer."""
    e, sr = step_run_artifacts.c, step_runs.c
    path = (cwd / target).resolve() if target else cwd
    match = _RUN_STEP_VAR.fullmatch(target)
    if match and not path.exists():
        run_id, step, name = int(match[1]), match[2], match[3]
        step_run_id = conn.execute(select(sr.id).where(sr.run_id == run_id, sr.step_name == step)
                                   ).scalar()
        if step_run_id is None:
            raise SameError(f"run {run_id} has no step {step!r}")
        edges = {(m["direction"], m["name"]): dict(m) for m in conn.execute(
            select(e.direction, e.name, e.role, e.artifact_sha256.label("sha256"), artifacts.c.kind,
                   artifacts.c.size, artifacts.c.location)
            .join(artifacts).where(e.step_run_id == step_run_id)).mappings()}
        if ("out", name) in edges:
            return {**_node(edges[("out", name)]), "producer_id": step_run_id}
        if ("in", name) in edges:
            return {**_node(edges[("in", name)]), "producer_id": None}
        known = sorted({n for _, n in edges}) or ["nothing recorded"]
        raise SameError(f"step {step!r} of run {run_id} has no input or output {name!r} "
                        f"(it has: {', '.join(known)})")
    if _SHA_PREFIX.fullmatch(target) and not path.exists():
        found = conn.execute(select(artifacts).where(artifacts.c.sha256.like(f"{target}%"))
                             .limit(2)).mappings().all()
        if not found:
            raise SameError(f"no recorded artifact has a sha256 starting with {target}")
        if len(found) > 1:
            raise SameError(f"sha256 prefix {target} is ambiguous: give more digits")
        art = found[0]
        name = conn.execute(select(e.name, e.role).where(e.artifact_sha256 == art["sha256"])
                            .order_by(e.step_run_id.desc()).limit(1)).first()
        return {**_node({"name": name[0] if name else art["sha256"][:12],
                         "role": name[1] if name else art["kind"], **dict(art)}),
                "producer_id": None}
    return _resolve_path(conn, path, target)


def _resolve_path(conn: Connection, path: Path, target: str) -> dict:
    e, sr = step_run_artifacts.c, step_runs.c
    parts = path.parts
    names = {str(path)} | {"/".join(parts[i:]) for i in range(1, len(parts))}
    rows = conn.execute(
        select(e.step_run_id, e.direction, e.name, e.role, e.artifact_sha256.label("sha256"),
               artifacts.c.kind, artifacts.c.size, artifacts.c.location, sr.run_id,
               runs.c.notebook_path)
        .join(artifacts).join(step_runs, sr.id == e.step_run_id).join(runs, runs.c.id == sr.run_id)
        .where(e.role == "file", e.name.in_(names))
        .order_by((e.direction == "out").desc(), e.step_run_id.desc())).mappings().all()
    for row in rows:
        if row["name"] == str(path) or Path(row["notebook_path"]).parent / row["name"] == path:
            node = {**_node(dict(row)), "location": str(path)}
            _flag_modified(node, {"run_id": row["run_id"], "notebook": row["notebook_path"]})
            producer = row["step_run_id"] if row["direction"] == "out" else None
            return {**node, "producer_id": producer}
    if path.is_file():
        sha = _sha256(path)
        if conn.execute(select(artifacts.c.sha256).where(artifacts.c.sha256 == sha)).first():
            return {"name": target, "role": "file", "sha256": sha, "kind": "file",
                    "size": path.stat().st_size, "location": str(path), "modified": None,
                    "producer_id": None}
    raise SameError(f"no recorded lineage for {target}: no step run read or wrote it",
                    path=str(path))


def _flag_modified(node: dict, producer: dict) -> None:
    """Compare a file node's current bytes with the recorded hash."""
    if node["role"] != "file" or "run_id" not in producer:
        return
    name = Path(node["name"])
    path = name if name.is_absolute() else Path(producer["notebook"]).parent / name
    node["location"] = str(path)
    run = producer["run_id"]
    if not path.is_file():
        node["modified"] = f"missing: deleted or moved since run {run}"
    elif ((node["size"] is not None and path.stat().st_size != node["size"])
          or _sha256(path) != node["sha256"]):
        node["modified"] = f"modified since run {run}: hash differs"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# -- rendering ------------------------------------------------------------------------------------

def render_text(tree: dict) -> str:
    lines: list[str] = []
    _text(tree, "", "", lines)
    return "\n".join(lines)


def _label(node: dict) -> str:
    size = f", {node['size']} bytes" if node.get("size") is not None else ""
    flag = f"  !! {node['modified']}" if node.get("modified") else ""
    return f"{node['name']}  ({node['role']}, sha256 {node['sha256'][:12]}{size}){flag}"


def _text(node: dict, first: str, rest: str, lines: list[str]) -> None:
    lines.append(first + _label(node))
    p = node.get("producer")
    if p is None:
        lines.append(rest + "   no recorded producer: source data")
        return
    if p.get("shown_above") or p.get("depth_limit"):
        why = "shown above" if p.get("shown_above") else "depth limit reached"
        lines.append(rest + f"   produced by step run {p['step_run_id']} ({why})")
        return
    when = (p["finished_at"] or "")[:19].replace("T", " ")
    lines.append(rest + f"   produced by run {p['run_id']}, step {p['step']} ({when} UTC), "
                        f"code {(p['code_sha256'] or '?')[:12]}"
                 + (f", git {p['git_commit'][:12]}" if p.get("git_commit") else ""))
    if p["parameters"]:
        lines.append(rest + "   parameters: " + ", ".join(f"{k}={v!r}"
                                                          for k, v in p["parameters"].items()))
    if p["packages"]:
        lines.append(rest + "   packages: " + ", ".join(f"{k} {v}" for k, v in p["packages"].items()))
    children = node.get("inputs", [])
    for i, child in enumerate(children):
        last = i == len(children) - 1
        _text(child, rest + ("└─ " if last else "├─ "), rest + ("   " if last else "│  "), lines)


def render_dot(tree: dict) -> str:
    """Graphviz DOT: artifacts are ellipses, step runs boxes, arrows follow the data."""
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    seen: set[str] = set()

    def visit(node: dict) -> str:
        art = f"a_{node['sha256'][:16]}"
        if art not in seen:
            seen.add(art)
            color = ', color=red' if node.get("modified") else ""
            lines.append(f"  {art} [label={json.dumps(node['name'] + chr(10) + node['sha256'][:12])}"
                         f", shape=ellipse{color}];")
        p = node.get("producer")
        if p:
            step = f"s_{p['step_run_id']}"
            if "run_id" in p and step not in seen:
                seen.add(step)
                label = json.dumps(f"run {p['run_id']}: {p['step']}")
                lines.append(f"  {step} [label={label}, shape=box];")
                for child in node.get("inputs", []):
                    lines.append(f"  {visit(child)} -> {step};")
            lines.append(f"  {step} -> {art};")
        return art

    visit(tree)
    lines.append("}")
    return "\n".join(dict.fromkeys(lines)) + "\n"


# -- compare runs ---------------------------------------------------------------------------------

def compare(store: Any, *run_ids: int) -> dict:
    """What differs between two or more runs: parameters, per step the code (per-cell hashes), package
    versions, input data and output hashes, status, and every metric. Every list holds one value per
    run, in ``run_ids`` order; a key is shown when its values are not all equal (metrics: always)."""
    if len(run_ids) < 2:
        raise SameError(f"compare needs at least two runs (got {len(run_ids)})")
    found = [store.get_run(run_id) for run_id in run_ids]
    for run_id, run in zip(run_ids, found):
        if run is None:
            raise SameError(f"there is no run {run_id}")
    steps_of = [{s["step_name"]: s for s in run["steps"]} for run in found]
    packages: dict[str, list] = {}
    steps: dict[str, dict] = {}
    for name in dict.fromkeys(n for by_name in steps_of for n in by_name):
        each = [by_name.get(name, {}) for by_name in steps_of]
        infos = [s.get("cache_info") or {} for s in each]
        for dist, values in _diff(*[i.get("packages", {}) for i in infos]).items():
            packages.setdefault(dist, values)
        steps[name] = {
            "status": [s.get("status") for s in each],
            "code": _diff(*[i.get("cells", {}) for i in infos]),
            "inputs": _diff(*[_hashes(s, "inputs") for s in each]),
            "outputs": _diff(*[_hashes(s, "outputs") for s in each]),
            "metrics": {k: list(v) for k, v in _pairs(*[_metric_values(s) for s in each])},
            "resources": compare_resources(each),     # measurements: shown, never a "difference"
        }
    params = _diff(*[run["params"] for run in found])
    differs = bool(params or packages or any(
        s["code"] or s["inputs"] or s["outputs"] or not _same(s["status"]) for s in steps.values()))
    return {"runs": list(run_ids), "notebook": [run["notebook_path"] for run in found],
            "notebook_sha256": [run["notebook_sha256"] for run in found],
            "params": params, "packages": packages, "steps": steps, "identical": not differs,
            "flags": growth_flags(list(run_ids), steps)}


def _hashes(step: dict, key: str) -> dict[str, str]:
    return {f"{r['name']}" + ("" if r["role"] in (None, "variable") else f" ({r['role']})"):
            r["sha256"] for r in step.get(key, [])}


def _metric_values(step: dict) -> dict[str, float]:
    return {m["name"]: m["value"] for m in step.get("metrics", [])}  # the last logged value wins


def _pairs(*dicts: dict):
    """(key, values: one per dict) over every key of ``dicts``, in first-seen order."""
    for key in dict.fromkeys(k for d in dicts for k in d):
        yield key, tuple(d.get(key) for d in dicts)


def _same(values) -> bool:
    return all(v == values[0] for v in values[1:])


def _diff(*dicts: dict) -> dict[str, list]:
    return {k: list(values) for k, values in _pairs(*dicts) if not _same(values)}


def render_compare(diff: dict) -> str:
    """Two runs: ``old → new`` per difference; more: the values in run order, separated by ``|``."""
    runs = diff["runs"]
    if len(runs) == 2:
        def show(values, fmt=_short) -> str:
            return f"{fmt(values[0])} → {fmt(values[1])}"

        head = f"run {runs[0]} → run {runs[1]}"
    else:
        def show(values, fmt=_short) -> str:
            return " | ".join(fmt(v) for v in values)

        head = "runs " + " | ".join(map(str, runs))
    lines = [head + (": no differences" if diff["identical"] else "")]
    flags = diff.get("flags") or []
    if flags:
        lines.append("grew more than 2x:")
        lines += [f"  {flag_text(flag, len(runs) == 2)}" for flag in flags]
    if not _same(diff["notebook_sha256"]):
        lines.append("notebook: source changed")
    for title, items in (("parameters", diff["params"]), ("packages", diff["packages"])):
        if items:
            lines.append(f"{title}:")
            lines += [f"  {k}: {show(v)}" for k, v in items.items()]
    for name, s in diff["steps"].items():
        body = []
        if not _same(s["status"]):
            body.append(f"  status: {show(s['status'], str)}")
        body += [f"  code of cell {c}: {show(v)}" for c, v in s["code"].items()]
        for key in ("inputs", "outputs"):
            body += [f"  {key[:-1]} {n}: {show(v)}" for n, v in s[key].items()]
        body += [f"  metric {m}: {show(v, _number)}" + (_delta(*v) if len(v) == 2 else "")
                 for m, v in s["metrics"].items()]
        figures = resources_line(s.get("resources") or {}, show)
        if figures:
            body.append(figures)
        if body:
            lines += [f"step {name}:", *body]
    return "\n".join(lines)


def _short(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
        return value[:12]
    return repr(value) if not isinstance(value, str) else value


def _number(value: Any) -> str:
    return "—" if value is None else number_text(value)


def _delta(x: float | None, y: float | None) -> str:
    if x is None or y is None or x == y:
        return ""
    change = number_text(y - x)
    return f" ({'' if change.startswith('-') else '+'}{change})"


# -- runs with metric columns ---------------------------------------------------------------------

def runs_with_metrics(store: Any, limit: int = 50, offset: int = 0,
                      notebook_path: str | Path | None = None) -> dict:
    """``{"columns": [metric names], "runs": [run dicts + "metrics": {column: value}]}`` for
    ``same-nb runs --metrics``. A metric logged by several steps of a run becomes ``step.name``."""
    listed = store.list_runs(limit=limit, offset=offset, notebook_path=notebook_path)
    rows = store.run_metrics([r["id"] for r in listed])
    steps_of: dict[str, set[str]] = {}
    for m in rows:
        steps_of.setdefault(m["name"], set()).add(m["step_name"])
    values: dict[int, dict[str, float]] = {}
    for m in rows:  # ordered by metric id: the last logged value wins
        key = m["name"] if len(steps_of[m["name"]]) == 1 else f"{m['step_name']}.{m['name']}"
        values.setdefault(m["run_id"], {})[key] = m["value"]
    columns = sorted({k for v in values.values() for k in v})
    for run in listed:
        run["metrics"] = values.get(run["id"], {})
    return {"columns": columns, "runs": listed}
