"""The run store's tables (the one ``MetaData`` for ``create_all`` and later Alembic) and the
checks that turn callers' records into valid rows.

Only portable types, so the same schema serves SQLite and PostgreSQL.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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

from same_nb.errors import SameError

RUN_NAME_MAX = 255
RUN_NOTE_MAX = 10_000
RUN_STATUSES = ("pending", "running", "success", "failed", "cancelled", "interrupted")
STEP_STATUSES = ("pending", "running", "success", "failed", "skipped", "cancelled", "cached",
                 "interrupted")


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
    # Run numbers are shown to users: never reuse one after a delete.
    sqlite_autoincrement=True,
)
Index("ix_runs_created_at", runs.c.created_at)
Index("ix_runs_notebook_path_id", runs.c.notebook_path, runs.c.id)
Index("ix_runs_status_host", runs.c.status, runs.c.host)

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


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SameError(f"invalid {what} {value!r}: expected one of {', '.join(choices)}")


def check_json(what: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)     # NaN/Infinity are not JSON: PostgreSQL refuses them
    except (TypeError, ValueError) as exc:
        raise SameError(f"{what} are not JSON-serializable: {exc}") from exc


def edge_row(step_run_id: int, direction: str, record: dict) -> dict:
    if not isinstance(record, dict) or not record.get("name"):
        raise SameError(f"step run {step_run_id}: {direction}put record without a name: {record!r}")
    sha = record.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise SameError(f"step run {step_run_id}: {direction}put {record['name']!r} has no valid "
                        f"sha256 (got {sha!r})")
    return dict(step_run_id=step_run_id, direction=direction, name=str(record["name"]),
                artifact_sha256=sha, role=record.get("role"))


def metric_row(step_run_id: int, metric: dict, now: datetime) -> dict:
    try:
        value = float(metric["value"])
        name = str(metric["name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SameError(f"step run {step_run_id}: invalid metric {metric!r} "
                        "(needs a name and a numeric value)") from exc
    logged_at = metric.get("logged_at") or now
    if not isinstance(logged_at, datetime) or logged_at.tzinfo is None:
        raise SameError(f"step run {step_run_id}: metric {name!r} needs a timezone-aware "
                        f"logged_at (got {logged_at!r})")
    return dict(step_run_id=step_run_id, name=name, value=value, step=metric.get("step"),
                logged_at=logged_at)


def as_str(value: str | Path | None) -> str | None:
    return None if value is None else str(value)


def artifact_row(record: dict, now: datetime) -> dict:
    """An ``artifacts`` row from a record already checked by :func:`edge_row`."""
    return dict(sha256=record["sha256"], kind=record.get("kind"), type=record.get("type"),
                size=record.get("size"), location=as_str(record.get("location")), created_at=now)
