"""Lineage graphs from the run store: step runs and the artifacts they read and wrote.

A graph is ``{"root", "nodes", "edges", "truncated"}``. Nodes are ``{"id", "kind", "label", "data"}``
with kind ``step_run`` or ``artifact``; edges are ``{"source", "target", "kind", "name"}`` with kind
``input`` (artifact → step run) or ``output`` (step run → artifact). Runs link to each other through
artifact hashes, so an input made by an earlier run shows that run's producing step. Later node kinds
(files, datasets) fit the same shape.
"""
from __future__ import annotations

from sqlalchemy import select

from same_nb.errors import SameError
from same_nb.store_schema import artifacts, step_run_artifacts, step_runs

MAX_NODES = 300
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
                     "type": row["type"], "size": row["size"], "location": row["location"]}})
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


def _producers(conn, shas: set[str]) -> dict[str, dict]:
    """The step run that made each hash: one that computed it (not a cache hit) if any, newest first."""
    query = (select(step_runs, step_run_artifacts.c.artifact_sha256)
             .join(step_run_artifacts, step_run_artifacts.c.step_run_id == step_runs.c.id)
             .where(step_run_artifacts.c.artifact_sha256.in_(list(shas)),
                    step_run_artifacts.c.direction == "out")
             .order_by(step_runs.c.cache_hit, step_runs.c.id.desc()))
    best: dict[str, dict] = {}
    for row in conn.execute(query).mappings():
        best.setdefault(row["artifact_sha256"], dict(row))
    return best


def run_lineage(store, run_id: int) -> dict:
    """The run's step runs and artifacts, plus the earlier step runs that made its outside inputs."""
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
        for sha, producer in (_producers(conn, outside).items() if outside else ()):
            graph.step(producer)
            graph.link({"step_run_id": producer["id"], "direction": "out", "artifact_sha256": sha,
                        "name": graph.nodes[f"artifact:{sha}"]["label"], "kind": None, "type": None,
                        "size": None, "location": None})
    return graph.to_dict(truncated=False)


def artifact_lineage(store, sha256: str, max_nodes: int = MAX_NODES) -> dict:
    """Trace an artifact upstream: its producer, that step's inputs, their producers, and so on."""
    graph = _Graph(root=f"artifact:{sha256}")
    with store.engine.connect() as conn:
        seed = conn.execute(select(step_run_artifacts, artifacts.c.kind, artifacts.c.type, artifacts.c.size,
                                   artifacts.c.location).join(artifacts)
                            .where(step_run_artifacts.c.artifact_sha256 == sha256).limit(1)).mappings().first()
        if seed is None:
            raise SameError(f"no artifact with sha256 {sha256} in this store")
        graph.artifact(seed)
        frontier, seen = {sha256}, {sha256}
        truncated = False
        while frontier:
            if len(graph.nodes) >= max_nodes:
                truncated = True
                break
            producers = _producers(conn, frontier)
            frontier = set()
            new_steps = [p for p in producers.values() if graph.step_node_id(p["id"]) not in graph.nodes]
            for p in producers.values():
                graph.step(p)
            if not new_steps:
                continue
            for link in _edges_of(conn, [p["id"] for p in new_steps]):
                if link["direction"] == "out" and link["artifact_sha256"] not in producers:
                    continue                      # other outputs of the step are not upstream of the root
                graph.link(link)
                if link["direction"] == "in" and link["artifact_sha256"] not in seen:
                    seen.add(link["artifact_sha256"])
                    frontier.add(link["artifact_sha256"])
    return graph.to_dict(truncated=truncated)
