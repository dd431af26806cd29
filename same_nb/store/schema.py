"""The run store's tables (the one ``MetaData`` for ``create_all`` and later Alembic); the checks that
turn callers' records into valid rows live in ``rows.py`` (standard library only).

Only portable types, so the same schema serves SQLite and PostgreSQL.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes UTC-aware datetimes")
        value = value.astimezone(timezone.utc)
        # SQLite keeps the text as given; store it naive so ordering by text is chronological.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(
            timezone.utc)


# SQLite only auto-increments an INTEGER PRIMARY KEY, so BigInteger ids fall back to Integer there.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notebook_path", String(4096), nullable=False),
    Column("notebook_sha256", String(64), nullable=False),
    Column("pipeline_name", String(255), nullable=False),
    Column("params", JSON, nullable=False),
    Column("target", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("git_commit", String(64)),
    Column("user", String(255)),
    Column("host", String(255)),
    Column("pid", Integer),
    # Clock ticks since boot when `pid` started: tells a live pid from a reused one.
    Column("pid_started", BigInteger),
    Column("run_dir", String(4096)),
    Column("remote_id", String(255)),
    Column("remote_url", String(4096)),
    Column("error", Text),
    Column("name", String(255)),      # the user's label and note (Store.label_run)
    Column("note", Text),
    Column("sweep_id", String(64)),   # the runs of one `run --sweep` share it
    # Run numbers are shown to users: never reuse one after a delete.
    sqlite_autoincrement=True,
)
Index("ix_runs_created_at", runs.c.created_at)
Index("ix_runs_notebook_path_id", runs.c.notebook_path, runs.c.id)
Index("ix_runs_status_host", runs.c.status, runs.c.host)
Index("ix_runs_sweep_id", runs.c.sweep_id)

step_runs = Table(
    "step_runs", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_name", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("duration_s", Float),
    Column("cache_hit", Boolean, nullable=False, default=False),
    Column("cache_key", String(128)),
    Column("cache_info", JSON),
    Column("reason", Text),
    Column("executed_notebook", String(4096)),
    Column("log_path", String(4096)),
    Column("error", JSON),
    Column("code_sha256", String(64)),
    # duration_s is the wall time; these split it so kernel start-up never reads as compute.
    Column("kernel_wait_s", Float),
    Column("compute_s", Float),
    # What the step's kernel used: peak resident memory of its process tree, CPU time (user + system),
    # and the bytes of the artifacts it loaded and saved.
    Column("peak_rss_bytes", BigInteger),
    Column("cpu_s", Float),
    Column("bytes_in", BigInteger),
    Column("bytes_out", BigInteger),
)
Index("ix_step_runs_run_id", step_runs.c.run_id)
Index("ix_step_runs_cache_key", step_runs.c.cache_key)
Index("ix_step_runs_step_name_run_id", step_runs.c.step_name, step_runs.c.run_id)

artifacts = Table(
    "artifacts", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("kind", String(64)),
    Column("type", String(255)),
    Column("size", BigInteger),
    Column("location", String(4096)),
    Column("created_at", UTCDateTime, nullable=False),
)

step_run_artifacts = Table(
    "step_run_artifacts", metadata,
    Column("step_run_id", BigId, ForeignKey("step_runs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("direction", String(8), primary_key=True),
    Column("name", String(1024), primary_key=True),
    Column("artifact_sha256", String(64), ForeignKey("artifacts.sha256"), nullable=False),
    Column("role", String(32)),
)
Index("ix_step_run_artifacts_sha256", step_run_artifacts.c.artifact_sha256)

metrics = Table(
    "metrics", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("step_run_id", BigId, ForeignKey("step_runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", Float, nullable=False),
    Column("step", Integer),
    Column("logged_at", UTCDateTime, nullable=False),
)
Index("ix_metrics_step_run_id_name", metrics.c.step_run_id, metrics.c.name)

# The exact notebook bytes each run executed, by sha256: `same-nb rerun` runs them again.
notebook_snapshots = Table(
    "notebook_snapshots", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
