"""The 0003 → 0004 migration (a run's sweep, a step run's resources) of a store that already holds
runs, on SQLite and a real PostgreSQL, and back."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from same_nb.store.database import SCHEMA_REVISION, open_store
from tests.store.test_database_labels import alembic_config, new_run

RUN_COLUMNS = {"sweep_id"}
STEP_COLUMNS = {"peak_rss_bytes", "cpu_s", "bytes_in", "bytes_out"}


def _columns(conn, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def test_store_at_0003_with_runs_upgrades_to_0004_and_back(store_url: str, tmp_path: Path):
    assert SCHEMA_REVISION == "0004"
    (tmp_path / "db").mkdir(exist_ok=True)             # where the SQLite store_url points
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
        conn.execute(sa.text(
            "INSERT INTO runs (notebook_path, notebook_sha256, pipeline_name, params, target, "
            "status, created_at) VALUES ('/nb.ipynb', :sha, 'old', '{}', 'local', 'success', "
            "CURRENT_TIMESTAMP)"), {"sha": "0" * 64})
        assert not RUN_COLUMNS & _columns(conn, "runs")
    engine.dispose()
    with open_store(store_url) as store:               # opening migrates to the head
        (old,) = store.list_runs()
        assert old["pipeline_name"] == "old"
        new_run(store, tmp_path)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        assert RUN_COLUMNS <= _columns(conn, "runs") and STEP_COLUMNS <= _columns(conn, "step_runs")
        assert "ix_runs_sweep_id" in {i["name"] for i in sa.inspect(conn).get_indexes("runs")}
        command.downgrade(alembic_config(conn), "0003")
        assert not RUN_COLUMNS & _columns(conn, "runs") and not STEP_COLUMNS & _columns(conn, "step_runs")
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 2
    engine.dispose()
