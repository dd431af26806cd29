"""The run store through the standard library's sqlite3, for reruns where every step is cached.

Importing SQLAlchemy takes about 0.3 s, more than everything else a fully cached rerun does. This
store records such a run without it: the methods are portable.py's (the same code ``Store`` runs),
over sqlite3 primitives that encode values as SQLAlchemy's SQLite dialect does, by each column's
declared type. It is used only when the SQLite store beside the notebook exists with its schema
at head and no run of it is active (the full store handles migrations and interrupted runs).

Everything happens in ONE ``BEGIN IMMEDIATE`` transaction, committed only when the run finishes
successfully; anything else rolls back, leaving no trace, and the caller runs the normal path.
Standard library only.
"""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from same_nb.store.portable import ACTIVE, CacheReads, RunWrites
from same_nb.store.rows import DB_ENV, SCHEMA_REVISION


class NotAllCached(Exception):
    """A step of a run recorded by the lean store would have to execute: take the normal path."""


def open_lean_store(notebook_dir: Path) -> LeanStore | None:
    """The lean store of ``<notebook_dir>/.same/same.db``, or None when the normal store must be used."""
    path = Path(notebook_dir) / ".same" / "same.db"
    if os.environ.get(DB_ENV) or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        # The same connection settings as database._configure_sqlite; the journal mode is the file's.
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            raise NotAllCached("not yet in WAL mode")
        conn.execute("BEGIN IMMEDIATE")
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        placeholders = ", ".join("?" for _ in ACTIVE)
        active = conn.execute(f"SELECT 1 FROM runs WHERE status IN ({placeholders}) LIMIT 1", ACTIVE).fetchone()
        if revision is None or revision[0] != SCHEMA_REVISION or active is not None:
            raise NotAllCached("the store needs migrating, or a run is active")
    except (sqlite3.Error, NotAllCached):
        conn.close()                                # closing rolls back
        return None
    return LeanStore(conn)


class LeanStore(CacheReads, RunWrites):
    lean = True

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.conn.row_factory = sqlite3.Row
        self.committed = False
        self._writer = _SqliteWriter(conn)

    @contextmanager
    def _writes(self) -> Iterator[_SqliteWriter]:
        try:
            yield self._writer                      # inside the one transaction
        except sqlite3.Error as exc:                # the normal path retries, and reports what persists
            raise NotAllCached(f"lean store: {exc}") from exc

    def _query(self, sql: str, params: dict[str, Any]) -> list[dict]:
        try:
            return [dict(r) for r in self.conn.execute(sql, params)]
        except sqlite3.Error as exc:
            raise NotAllCached(f"lean store: {exc}") from exc

    def last_step_run(self, notebook_path: str | Path, step_name: str) -> dict | None:
        raise NotAllCached(step_name)               # asked only when a step is not cached

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        if status == "cancelled":                   # Ctrl-C: let it propagate; close() rolls back
            return
        if status != "success":                     # the normal path runs it again and records that
            raise NotAllCached(f"run {status}")
        super().finish_run(run_id, status, error)
        with self._writes():
            self.conn.execute("COMMIT")
        self.committed = True

    def close(self) -> None:
        try:
            if not self.committed:
                self.conn.execute("ROLLBACK")
        finally:
            self.conn.close()


# Values as SQLAlchemy's SQLite dialect stores them (schema.UTCDateTime: naive UTC text; JSON: json.dumps,
# so None is 'null'; Boolean: 0/1), keyed by the declared column type Alembic created.
def _encode(decl: str, value: Any) -> Any:
    if value is None and decl != "JSON":
        return None
    if decl == "JSON":
        return json.dumps(value)
    if decl == "DATETIME":
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes UTC-aware datetimes")
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if decl == "BOOLEAN":
        return int(bool(value))
    return value


def _decode(decl: str, value: Any) -> Any:
    if value is None:
        return None
    if decl == "JSON":
        return json.loads(value)
    if decl == "DATETIME":
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    if decl == "BOOLEAN":
        return bool(value)
    return value


class _SqliteWriter:
    """portable.py's write primitives in plain SQL; identifiers come from portable.py, never from users."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.types: dict[str, dict[str, str]] = {}

    def _decl(self, table: str) -> dict[str, str]:
        if table not in self.types:
            self.types[table] = {r[1]: r[2].upper() for r in self.conn.execute(f'PRAGMA table_info("{table}")')}
        return self.types[table]

    def _row(self, table: str, row: dict) -> dict:
        decl = self._decl(table)
        return {k: _encode(decl[k], v) for k, v in row.items()}

    def insert(self, table: str, rows: list[dict], *, returning: tuple[str, ...] = (),
               ignore: bool = False) -> list[tuple]:
        columns = list(rows[0])
        sql = (f'INSERT INTO "{table}" ({_names(columns)}) VALUES ({", ".join(":" + c for c in columns)})'
               + (" ON CONFLICT DO NOTHING" if ignore else ""))
        if not returning:
            self.conn.executemany(sql, [self._row(table, r) for r in rows])
            return []
        decl = self._decl(table)
        sql += " RETURNING " + _names(returning)
        out = []
        for r in rows:
            got = self.conn.execute(sql, self._row(table, r)).fetchone()
            out.append(tuple(_decode(decl[c], got[i]) for i, c in enumerate(returning)))
        return out

    def update(self, table: str, values: dict, **where: Any) -> int:
        sets = ", ".join(f'"{k}" = :v_{k}' for k in values)
        params = {f"v_{k}": v for k, v in self._row(table, values).items()}
        params.update({f"w_{k}": v for k, v in self._row(table, where).items()})
        return self.conn.execute(f'UPDATE "{table}" SET {sets} WHERE {_where(where)}', params).rowcount

    def first(self, table: str, columns: tuple[str, ...], **where: Any) -> tuple | None:
        decl = self._decl(table)
        row = self.conn.execute(f'SELECT {_names(columns)} FROM "{table}" WHERE {_where(where)}',
                                {f"w_{k}": v for k, v in self._row(table, where).items()}).fetchone()
        return None if row is None else tuple(_decode(decl[c], row[i]) for i, c in enumerate(columns))

    def copy(self, table: str, columns: tuple[str, ...], *, where: dict, values: dict, order_by: str) -> None:
        picked = ", ".join([*(f":v_{k}" for k in values), _names(columns)])
        params = {f"v_{k}": v for k, v in self._row(table, values).items()}
        params.update({f"w_{k}": v for k, v in self._row(table, where).items()})
        self.conn.execute(f'INSERT INTO "{table}" ({_names([*values, *columns])}) SELECT {picked} FROM "{table}" '
                          f'WHERE {_where(where)} ORDER BY "{order_by}"', params)


def _where(where: dict) -> str:
    return " AND ".join(f'"{k}" = :w_{k}' for k in where)


def _names(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)
