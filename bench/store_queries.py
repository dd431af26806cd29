"""Run-store query times on a store holding 100k step runs (SQLite).

Goals: listing the newest runs <= 50 ms; a 100-deep upstream trace <= 100 ms; runs with metric
columns <= 50 ms. Every step run produces one value that the next run's step reads, so tracing the
newest output walks a chain of lineage across runs.

    python bench/store_queries.py [--step-runs 100000] [--depth 100]
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from same_nb.store import lineage
from same_nb.store.database import open_store
from same_nb.store.schema import artifacts, metrics, runs, step_run_artifacts, step_runs

STEPS_PER_RUN = 10


def fill(store, n_step_runs: int) -> None:
    """n_step_runs step runs in runs of 10; step k of run r reads step k-1's output (step 0 reads
    the last step of run r-1), so lineage chains through every step run."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    n_runs = n_step_runs // STEPS_PER_RUN
    sha = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n_step_runs)]
    with store.engine.begin() as conn:
        conn.execute(insert(runs), [dict(
            id=r + 1, notebook_path="/bench/nb.ipynb", notebook_sha256="0" * 64,
            pipeline_name="bench", params={"alpha": r % 7}, target="local", status="success",
            created_at=start + timedelta(minutes=r), started_at=start + timedelta(minutes=r),
            finished_at=start + timedelta(minutes=r, seconds=30), host="bench")
            for r in range(n_runs)])
        conn.execute(insert(step_runs), [dict(
            id=i + 1, run_id=i // STEPS_PER_RUN + 1, step_name=f"s{i % STEPS_PER_RUN}",
            status="success", cache_hit=False, started_at=start, finished_at=start,
            cache_key=f"k{i}", code_sha256="c" * 64,
            cache_info={"params": {"alpha": 1}, "cells": {"c1": "h"}, "packages": {"numpy": "2"}})
            for i in range(n_step_runs)])
        conn.execute(insert(artifacts), [dict(sha256=s, kind="pickle", size=10, created_at=start)
                                         for s in sha])
        conn.execute(insert(step_run_artifacts), [dict(
            step_run_id=i + 1, direction="out", name=f"v{i % STEPS_PER_RUN}", artifact_sha256=sha[i],
            role="variable") for i in range(n_step_runs)])
        conn.execute(insert(step_run_artifacts), [dict(
            step_run_id=i + 1, direction="in", name=f"v{(i - 1) % STEPS_PER_RUN}",
            artifact_sha256=sha[i - 1], role="variable") for i in range(1, n_step_runs)])
        conn.execute(insert(metrics), [dict(
            step_run_id=i + 1, name="loss", value=1 / (i + 1), logged_at=start)
            for i in range(STEPS_PER_RUN - 1, n_step_runs, STEPS_PER_RUN)])


def timed(fn, repeat: int = 7) -> float:
    """Median wall time in ms."""
    fn()  # warm caches
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--step-runs", type=int, default=100_000)
    ap.add_argument("--depth", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with open_store(f"sqlite:///{Path(tmp) / 'bench.db'}") as store:
            t0 = time.perf_counter()
            fill(store, args.step_runs)
            print(f"filled {args.step_runs} step runs in {time.perf_counter() - t0:.1f} s")
            newest = args.step_runs // STEPS_PER_RUN
            target = f"{newest}:s{STEPS_PER_RUN - 1}:v{STEPS_PER_RUN - 1}"

            def deep_trace():
                node, depth = lineage.trace(store, target, max_depth=args.depth), 0
                while node.get("inputs"):
                    node, depth = node["inputs"][0], depth + 1
                assert depth == args.depth, depth

            rows = [("list 50 newest runs", timed(lambda: store.list_runs(limit=50)), 50),
                    ("runs with metric columns", timed(lambda: lineage.runs_with_metrics(store)),
                     50),
                    (f"trace {args.depth} deep", timed(deep_trace), 100)]
    print(f"{'query':28} {'median':>9} {'goal':>8}")
    for name, ms, goal in rows:
        verdict = "ok" if ms <= goal else "MISSED"
        print(f"{name:28} {ms:7.1f}ms {goal:6d}ms  {verdict}")


if __name__ == "__main__":
    main()
