"""The checks that turn callers' records into valid rows of the run store, and the store's constants.

Standard library only: the lean SQLite path (``store/lean.py``) records cached runs with these
without importing SQLAlchemy, and ``schema.py`` re-exports them.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from same_nb.errors import SameError

DB_ENV = "SAME_NB_DB"
SCHEMA_REVISION = "0004"       # the newest revision in same_nb/store/migrations/versions
RUN_NAME_MAX = 255
RUN_NOTE_MAX = 10_000
RUN_STATUSES = ("pending", "running", "success", "failed", "cancelled", "interrupted")
STEP_STATUSES = ("pending", "running", "success", "failed", "skipped", "cancelled", "cached",
                 "interrupted")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
