"""Schema migrations (Alembic) and lineage queries on SQLite and a real PostgreSQL."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

import same_nb.store.database
from same_nb.store import lineage
from same_nb.store.database import SCHEMA_REVISION, open_store
from same_nb.store.schema import metadata

from postgres_server import fresh_database

BASELINE = ("runs", "step_runs", "artifacts", "step_run_artifacts", "metrics")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'same.db'}"
        return
    db_url, drop = fresh_database()
    yield db_url
    drop()


def revision(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return found


def test_schema_revision_is_the_migrations_head():
    config = Config()
    config.set_main_option("script_location",
                           str(Path(same_nb.store.database.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_new_store_is_migrated_to_head_with_every_table(url: str):
    with open_store(url) as store:
        tables = set(sa.inspect(store.engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}
    assert revision(url) == SCHEMA_REVISION


def test_store_made_by_create_all_is_stamped_and_upgraded(url: str, tmp_path: Path):
    engine = sa.create_engine(url)
    metadata.create_all(engine, tables=[metadata.tables[t] for t in BASELINE])
    with engine.begin() as conn:
        conn.execute(metadata.tables["runs"].insert().values(
            notebook_path="/nb.ipynb", notebook_sha256="0" * 64, pipeline_name="old", params={},
            target="local", status="success", created_at=sa.func.now()))
    engine.dispose()
    with open_store(url) as store:
        assert [r["pipeline_name"] for r in store.list_runs()] == ["old"]   # data kept
        assert store.notebook_snapshot("0" * 64) is None                      # new table works
    assert revision(url) == SCHEMA_REVISION


def record(store, tmp_path: Path, chain_length: int) -> tuple[list[int], list[str]]:
    """A chain of runs: each step reads the previous run's output file and writes the next."""
    run_ids, shas = [], []
    previous = None
    for i in range(chain_length):
        content = f"v{i}".encode()
        sha = hashlib.sha256(content).hexdigest()
        run_id = store.create_run(notebook_path=tmp_path / "nb.ipynb", notebook_sha256="0" * 64,
                                  pipeline_name="p", params={"i": i}, target="local",
                                  run_dir_root=tmp_path / "runs")
        step = store.add_step_runs(run_id, ["make"])["make"]
        store.start_step(step, cache_key=f"k{i}", cache_info={"params": {"i": i}, "cells": {}},
                         reason=None, code_sha256="c" * 64)
        out = {"name": "out.txt", "sha256": sha, "kind": "file", "size": len(content),
               "location": str(tmp_path / "out.txt"), "role": "file"}
        store.finish_step(step, status="success", inputs=[previous] if previous else [],
                          outputs=[out], executed_notebook=None, log_path=None,
                          metrics=[{"name": "i", "value": i}])
        previous = {**out, "name": "in.txt"}
        run_ids.append(run_id)
        shas.append(sha)
    (tmp_path / "out.txt").write_bytes(f"v{chain_length - 1}".encode())
    return run_ids, shas


def test_lineage_queries_on_both_backends(url: str, tmp_path: Path):
    with open_store(url) as store:
        run_ids, shas = record(store, tmp_path, 4)
        tree = lineage.trace(store, "out.txt", cwd=tmp_path)
        depth, node = [], tree
        while node:
            depth.append((node["producer"] or {}).get("run_id"))
            node = (node.get("inputs") or [None])[0]
        assert depth == run_ids[::-1]
        assert tree["modified"] is None
        cut = lineage.trace(store, "out.txt", cwd=tmp_path, max_depth=2)["inputs"][0]["inputs"][0]
        assert cut["producer"] == {"step_run_id": cut["producer"]["step_run_id"],
                                   "shown_above": False, "depth_limit": True}
        assert "(depth limit reached)" in lineage.render_text(
            lineage.trace(store, "out.txt", cwd=tmp_path, max_depth=2))
        assert lineage.trace(store, shas[1][:9])["producer"]["run_id"] == run_ids[1]
        diff = lineage.compare(store, run_ids[0], run_ids[1])
        assert diff["params"] == {"i": [0, 1]}
        assert diff["steps"]["make"]["metrics"] == {"i": [0.0, 1.0]}
        table = lineage.runs_with_metrics(store)
        assert [r["metrics"]["i"] for r in table["runs"]] == [3.0, 2.0, 1.0, 0.0]
