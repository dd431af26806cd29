"""Lineage graphs from the run store: step runs and the artifacts they read and wrote.

A graph is ``{"root", "nodes", "edges", "truncated"}``. Nodes are ``{"id", "kind", "label", "data"}``
with kind ``step_run`` or ``artifact``; edges are ``{"source", "target", "kind", "name"}`` with kind
``input`` (artifact → step run) or ``output`` (step run → artifact). Runs link to each other through
artifact hashes, so an input made by an earlier run shows that run's producing step. Later node kinds
(files, datasets) fit the same shape.

Both graphs are confined to one Jupyter server root (``root``): step runs of notebooks outside it (a
store shared by several roots) are left out, and a file an artifact names is hashed only when its real
path lies inside the root (see :func:`same_nb.server.paths.open_confined`), never because the store says so.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import func, select

from same_nb.errors import SameError
from same_nb.server.paths import inside, open_confined
from same_nb.store.database import folder_prefix
from same_nb.store.schema import artifacts, runs, step_run_artifacts, step_runs

MAX_DEPTH = 50
_PRODUCED = ("success", "cached")
_STEP_FIELDS = ("id", "run_id", "step_name", "status", "cache_hit", "duration_s", "started_at",
                "finished_at")


class _Graph:
    def __init__(self, root: str):
        self.root = root
        self.nodes: dict[str, dict] = {}
        self.edges: dict[tuple, dict] = {}

    def step(self, row) -> str:
        node_id = f"step_run:{row['id']}"
        if node_id not in self.nodes:
            data = {k: row[k] for k in _STEP_FIELDS}
            self.nodes[node_id] = {"id": node_id, "kind": "step_run", "data": data,
                                   "label": f"{row['step_name']} (run {row['run_id']})"}
        return node_id

    def artifact(self, row) -> str:
        node_id = f"artifact:{row['artifact_sha256']}"
        node = self.nodes.setdefault(node_id, {
            "id": node_id, "kind": "artifact", "label": row["name"],
            "data": {"sha256": row["artifact_sha256"], "names": [], "kind": row["kind"],
                     "type": row["type"], "size": row["size"], "location": row["location"],
                     "role": row.get("role"), "modified": None}})
        if row["name"] not in node["data"]["names"]:
            node["data"]["names"].append(row["name"])
        return node_id

    def link(self, row) -> None:
        step_id, art_id = self.step_node_id(row["step_run_id"]), self.artifact(row)
        src, dst = (art_id, step_id) if row["direction"] == "in" else (step_id, art_id)
        kind = "input" if row["direction"] == "in" else "output"
        self.edges[(src, dst, row["name"])] = {"source": src, "target": dst, "kind": kind, "name": row["name"]}

    @staticmethod
    def step_node_id(step_run_id: int) -> str:
        return f"step_run:{step_run_id}"

    def to_dict(self, truncated: bool) -> dict:
        return {"root": self.root, "nodes": list(self.nodes.values()), "edges": list(self.edges.values()),
                "truncated": truncated}


def _edges_of(conn, step_run_ids: list[int]) -> list:
    query = (select(step_run_artifacts, artifacts.c.kind, artifacts.c.type, artifacts.c.size,
                    artifacts.c.location)
             .join(artifacts).where(step_run_artifacts.c.step_run_id.in_(step_run_ids))
             .order_by(step_run_artifacts.c.step_run_id, step_run_artifacts.c.name))
    return conn.execute(query).mappings().all()


def _under(root: str | Path):
    """SQL: the run's notebook lies below the server root."""
    prefix = folder_prefix(root)
    return func.substr(runs.c.notebook_path, 1, len(prefix)) == prefix


def _producers(conn, shas: set[str], root: str | Path) -> dict[str, dict]:
    """The step run that made each hash: one that computed it (not a cache hit) if any, newest first;
    only runs of notebooks under the server root."""
    query = (select(step_runs, step_run_artifacts.c.artifact_sha256)
             .join(step_run_artifacts, step_run_artifacts.c.step_run_id == step_runs.c.id)
             .join(runs, runs.c.id == step_runs.c.run_id)
             .where(step_run_artifacts.c.artifact_sha256.in_(list(shas)),
                    step_run_artifacts.c.direction == "out", step_runs.c.status.in_(_PRODUCED), _under(root))
             .order_by(step_runs.c.cache_hit, step_runs.c.id.desc()))
    best: dict[str, dict] = {}
    for row in conn.execute(query).mappings():
        best.setdefault(row["artifact_sha256"], dict(row))
    return best


def run_lineage(store, run_id: int, root: str | Path) -> dict:
    """The run's step runs and artifacts, plus the earlier step runs (under ``root``) that made its
    outside inputs. The caller checked that the run itself belongs to the folder asked about."""
    graph = _Graph(root=f"run:{run_id}")
    with store.engine.connect() as conn:
        rows = conn.execute(select(step_runs).where(step_runs.c.run_id == run_id)
                            .order_by(step_runs.c.id)).mappings().all()
        if not rows:
            raise SameError(f"run {run_id} has no recorded steps (yet)")
        for row in rows:
            graph.step(row)
        links = _edges_of(conn, [r["id"] for r in rows])
        for link in links:
            graph.link(link)
        made_here = {e["artifact_sha256"] for e in links if e["direction"] == "out"}
        outside = {e["artifact_sha256"] for e in links if e["direction"] == "in"} - made_here
        for sha, producer in (_producers(conn, outside, root).items() if outside else ()):
            graph.step(producer)
            graph.link({"step_run_id": producer["id"], "direction": "out", "artifact_sha256": sha,
                        "name": graph.nodes[f"artifact:{sha}"]["label"], "kind": None, "type": None,
                        "size": None, "location": None})
    return graph.to_dict(truncated=False)


def _file_check(node: dict, producer: dict, root: str) -> None:
    """``store.lineage._flag_modified`` confined to the server root: a file recorded outside it is
    neither opened nor shown (its location becomes None)."""
    if node["role"] != "file" or "run_id" not in producer:
        return
    name = Path(node["name"])
    path = name if name.is_absolute() else Path(producer["notebook"]).parent / name
    run = producer["run_id"]
    if not inside(root, os.path.realpath(path)):
        node["location"], node["modified"] = None, "not checked: outside the Jupyter server root"
        return
    node["location"] = str(path)
    with open_confined(path, root) as opened:
        if opened is None:
            node["modified"] = f"missing: deleted or moved since run {run}"
            return
        fd, info = opened
        if node["size"] is not None and info.st_size != node["size"]:
            node["modified"] = f"modified since run {run}: hash differs"
            return
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != node["sha256"]:
        node["modified"] = f"modified since run {run}: hash differs"


def _trace(store, sha256: str, root: str, max_depth: int) -> dict:
    """``store.lineage.trace`` of one full sha256, with files checked by :func:`_file_check` and
    producers outside ``root`` left out."""
    from same_nb.store.lineage import _node, _producer, _Tracer

    e = step_run_artifacts.c
    with store.engine.connect() as conn:
        art = conn.execute(select(artifacts).where(artifacts.c.sha256 == sha256)).mappings().first()
        if art is None:
            raise SameError(f"no recorded artifact has sha256 {sha256}")
        named = conn.execute(select(e.name, e.role).where(e.artifact_sha256 == sha256)
                             .order_by(e.step_run_id.desc()).limit(1)).first()
        tree = _node({"name": named[0] if named else sha256[:12], "role": named[1] if named else art["kind"],
                      **dict(art)})
        producer = conn.execute(select(_producer(sha256))).scalar()
        tracer = _Tracer(conn, producer, max_depth)
    prefix = folder_prefix(root)
    shown = {i for i, d in tracer.details.items() if str(d.get("notebook") or "").startswith(prefix)}

    # A run of another root is in the tracer's details but not shown: its producer reads as none.
    tracer.expand(tree, producer, 0, max_depth, shown=lambda i: i not in tracer.details or i in shown,
                  check_file=lambda child, made_by: _file_check(child, made_by, root))
    if tree.get("producer") and "run_id" in tree["producer"]:
        _file_check(tree, tree["producer"], root)     # the traced file itself: changed since its run?
    return tree


def artifact_lineage(store, sha256: str, root: str | Path, max_depth: int = MAX_DEPTH) -> dict:
    """Trace an artifact upstream (as ``same_nb.store.lineage.trace``): its producer, that step's inputs,
    their producers, and so on, across the runs under ``root``."""
    tree = _trace(store, sha256, os.path.realpath(root), max_depth)
    graph = _Graph(root=f"artifact:{tree['sha256']}")
    truncated = False
    pending = [(tree, None)]                    # (artifact node, the step run that reads it)
    while pending:
        node, reader = pending.pop()
        art_id = graph.artifact({"artifact_sha256": node["sha256"], "name": node["name"], "kind": node["kind"],
                                 "type": None, "size": node["size"], "location": node["location"],
                                 "role": node["role"]})
        graph.nodes[art_id]["data"]["modified"] = node.get("modified")
        if reader is not None:
            graph.edges[(art_id, reader, node["name"])] = {"source": art_id, "target": reader, "kind": "input",
                                                            "name": node["name"]}
        producer = node.get("producer")
        if producer is None:
            continue
        truncated = truncated or bool(producer.get("depth_limit"))
        step_id = graph.step_node_id(producer["step_run_id"])
        if "run_id" in producer:                # not a repeat of a step run shown above
            graph.step({"id": producer["step_run_id"], "run_id": producer["run_id"],
                        "step_name": producer["step"], "status": producer["status"],
                        "cache_hit": producer["cache_hit"], "duration_s": None, "started_at": None,
                        "finished_at": producer["finished_at"]})
            graph.nodes[step_id]["data"].update(parameters=producer["parameters"],
                                                code_sha256=producer["code_sha256"],
                                                git_commit=producer["git_commit"])
        graph.edges[(step_id, art_id, node["name"])] = {"source": step_id, "target": art_id, "kind": "output",
                                                         "name": node["name"]}
        pending.extend((child, step_id) for child in node.get("inputs", []))
    return graph.to_dict(truncated=truncated)
