"""The run store: runs, step runs, content-addressed artifacts, lineage edges and metrics.

SQLAlchemy Core over SQLite (``<notebook_dir>/.same/same.db``) or any URL in ``SAME_NB_DB``
(PostgreSQL). One Engine per Store. On SQLite every write is ``BEGIN IMMEDIATE`` in WAL mode with a
30 s busy timeout, so concurrent ``same-nb run`` processes queue for the lock instead of failing.
"""
from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError

from same_nb.errors import SameError
from same_nb.store.host import pid_alive
from same_nb.store.portable import ACTIVE, TARGETS, CacheReads, RunWrites  # noqa: F401  (TARGETS re-exported)
from same_nb.store.reads import (  # noqa: F401  (re-exported: callers import them from here)
    MAX_RUN_ID,
    RESUMABLE_STEP_STATUSES,
    RunReads,
    folder_prefix,
    valid_run_id,
)
from same_nb.store.rows import DB_ENV, RUN_NAME_MAX, RUN_NOTE_MAX, SCHEMA_REVISION, STEP_STATUSES, check_choice
from same_nb.store.rows import utc_now as _now
from same_nb.store.schema import metadata, notebook_snapshots, runs, step_runs

_SUPPORTED_BACKENDS = ("sqlite", "postgresql")
_PG_CREATE_LOCK = 0x5A3E_0001  # advisory lock id serializing migrations across processes
UNSET: Any = object()          # "leave this field as it is" (None clears it)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def open_store(url: str | None = None, notebook_dir: Path | None = None) -> Store:
    """Open the store at ``url``, else ``$SAME_NB_DB``, else ``<notebook_dir>/.same/same.db``."""
    url = url or os.environ.get(DB_ENV) or None
    if url is None:
        same_dir = Path(notebook_dir or Path.cwd()).resolve() / ".same"
        try:
            same_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SameError(f"cannot create the run store folder: {exc}",
                            path=str(same_dir)) from exc
        url = f"sqlite:///{same_dir / 'same.db'}"
    store = Store(url)
    store.mark_interrupted_runs()
    return store


class Store(RunReads, CacheReads, RunWrites):
    """All reads and writes of run records. Open it with :func:`open_store`. What a run records is
    written in portable.py, over the primitives ``_writes`` and ``_query`` below."""

    def __init__(self, url: str):
        self.url = url
        self.masked_url = mask_url(url)
        self.engine = self._create_engine()
        self._write_engine = self.engine.execution_options(same_nb_write=True)
        try:
            self._migrate()
        except DBAPIError as exc:
            self.engine.dispose()
            raise SameError(f"cannot open run store {self.masked_url}: {exc.orig}") from exc

    def _create_engine(self) -> Engine:
        try:
            parsed = make_url(self.url)
            backend = parsed.get_backend_name()
            if backend not in _SUPPORTED_BACKENDS:
                raise SameError(f"cannot open run store {self.masked_url}: unsupported database "
                                f"{backend!r} (use sqlite or postgresql)")
            if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            if backend == "postgresql":
                return create_engine(parsed, pool_pre_ping=True)
            engine = create_engine(parsed)
        except (ArgumentError, NoSuchModuleError, ImportError, OSError, ValueError) as exc:
            raise SameError(f"cannot open run store {self.masked_url}: {exc}") from exc
        _configure_sqlite(engine)
        return engine

    def _migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision; a store made by ``create_all``
        before migrations existed is stamped with the baseline revision first."""
        with self.engine.connect() as conn:
            if _schema_revision(conn) == SCHEMA_REVISION:
                return                    # the common case, without importing alembic (~0.4 s)
        with self._write_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CREATE_LOCK})
            revision = _schema_revision(conn)
            if revision == SCHEMA_REVISION:
                return                    # another process migrated while we waited
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
            config.attributes["connection"] = conn
            if revision is None and inspect(conn).has_table("runs"):
                command.stamp(config, "0001")
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, write: bool) -> Iterator[Connection]:
        try:
            with (self._write_engine if write else self.engine).begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise SameError(f"run store {self.masked_url} rejected a write: {exc.orig}") from exc
        except OperationalError as exc:
            raise SameError(f"run store {self.masked_url} is unavailable: {exc.orig}") from exc

    @contextmanager
    def _writes(self) -> Iterator[_CoreWriter]:
        with self._tx(write=True) as conn:
            yield _CoreWriter(conn)

    def _query(self, sql: str, params: dict[str, Any]) -> list[dict]:
        with self._tx(write=False) as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]

    # -- writes ------------------------------------------------------------------------------

    def notebook_snapshot(self, sha256: str) -> bytes | None:
        """The notebook bytes a run executed (recorded by :meth:`create_run`), or None."""
        with self._tx(write=False) as conn:
            return conn.execute(select(notebook_snapshots.c.content).where(
                notebook_snapshots.c.sha256 == sha256)).scalar()

    def set_remote(self, run_id: int, *, remote_id: str, remote_url: str | None) -> None:
        """Attach the remote (KFP) run id and UI URL to a run."""
        with self._tx(write=True) as conn:
            _require(conn.execute(update(runs).where(runs.c.id == run_id).values(
                remote_id=remote_id, remote_url=remote_url)).rowcount, f"no run {run_id}")

    def label_run(self, run_id: int, *, name: Any = UNSET, note: Any = UNSET) -> dict:
        """Set a run's label and/or note (None clears one, an omitted one stays); the updated run."""
        values = {k: v for k, v in (("name", name), ("note", note)) if v is not UNSET}
        for field, limit in (("name", RUN_NAME_MAX), ("note", RUN_NOTE_MAX)):
            value = values.get(field)
            if value is not None and not isinstance(value, str):
                raise SameError(f"run {run_id}: the {field} must be text or null, "
                                f"not {type(value).__name__}")
            if value is not None and len(value) > limit:
                raise SameError(f"run {run_id}: the {field} is {len(value)} characters long; "
                                f"the limit is {limit}")
        if not valid_run_id(run_id):
            raise SameError(f"no run {run_id}")
        if values:
            with self._tx(write=True) as conn:
                _require(conn.execute(update(runs).where(runs.c.id == run_id).values(values))
                         .rowcount, f"no run {run_id}")
        run = self.get_run(run_id)
        _require(run, f"no run {run_id}")
        return run

    def mark_steps(self, run_id: int, names: Iterable[str], status: str) -> None:
        """Set the status of some steps of a run (e.g. skipped after a failed upstream)."""
        check_choice("step status", status, STEP_STATUSES)
        wanted = set(names)
        if not wanted:
            return
        values: dict[str, Any] = {"status": status}
        if status not in ACTIVE:
            values["finished_at"] = func.coalesce(step_runs.c.finished_at, _now())
        with self._tx(write=True) as conn:
            found = set(conn.execute(select(step_runs.c.step_name).where(
                step_runs.c.run_id == run_id, step_runs.c.step_name.in_(wanted))).scalars())
            if found != wanted:
                raise SameError(f"run {run_id} has no steps {sorted(wanted - found)}")
            conn.execute(update(step_runs).where(step_runs.c.run_id == run_id,
                                                 step_runs.c.step_name.in_(wanted)).values(values))

    def mark_interrupted_runs(self) -> list[int]:
        """Mark this host's pending/running runs whose driving process is gone as interrupted."""
        host = socket.gethostname()
        with self._tx(write=False) as conn:
            active = conn.execute(select(runs.c.id, runs.c.pid, runs.c.pid_started).where(
                runs.c.status.in_(ACTIVE), runs.c.host == host,
                runs.c.remote_id.is_(None))).all()     # a remote run outlives its submitting process
        dead = [run_id for run_id, pid, started in active
                if pid is not None and not pid_alive(pid, started)]
        if not dead:
            return []
        now = _now()
        with self._tx(write=True) as conn:
            conn.execute(update(runs).where(runs.c.id.in_(dead), runs.c.status.in_(ACTIVE)).values(
                status="interrupted", finished_at=now,
                error=f"interrupted: the process driving this run on {host} ended before it "
                      "finished"))
            conn.execute(update(step_runs).where(step_runs.c.run_id.in_(dead),
                                                 step_runs.c.status.in_(ACTIVE)).values(
                status="interrupted", finished_at=now))
        return dead

class _CoreWriter:
    """portable.py's write primitives in SQLAlchemy Core: the tables' types encode the values."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def insert(self, table: str, rows: list[dict], *, returning: tuple[str, ...] = (),
               ignore: bool = False) -> list[tuple]:
        t = metadata.tables[table]
        stmt = _insert_ignore(self.conn, t) if ignore else insert(t)
        if not returning:
            self.conn.execute(stmt, rows)
            return []
        stmt = stmt.returning(*(t.c[c] for c in returning), sort_by_parameter_order=True)
        return [tuple(r) for r in self.conn.execute(stmt, rows).all()]

    def update(self, table: str, values: dict, **where: Any) -> int:
        t = metadata.tables[table]
        return self.conn.execute(update(t).where(*(t.c[k] == v for k, v in where.items())).values(values)).rowcount

    def first(self, table: str, columns: tuple[str, ...], **where: Any) -> tuple | None:
        t = metadata.tables[table]
        row = self.conn.execute(select(*(t.c[c] for c in columns))
                                .where(*(t.c[k] == v for k, v in where.items()))).first()
        return None if row is None else tuple(row)

    def copy(self, table: str, columns: tuple[str, ...], *, where: dict, values: dict, order_by: str) -> None:
        t = metadata.tables[table]
        self.conn.execute(insert(t).from_select(
            [*values, *columns],
            select(*(literal(v, t.c[k].type) for k, v in values.items()), *(t.c[c] for c in columns))
            .where(*(t.c[k] == v for k, v in where.items())).order_by(t.c[order_by])))


# -- helpers -----------------------------------------------------------------------------------







def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; no fsync per commit
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, where busy_timeout applies; a deferred
        # transaction upgrading to a writer fails at once with "database is locked".
        write = conn.get_execution_options().get("same_nb_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _schema_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _insert_ignore(conn: Connection, table: Any) -> Any:
    insert_fn = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return insert_fn(table).on_conflict_do_nothing()








def _require(found: Any, message: str) -> None:
    if not found:
        raise SameError(message)
