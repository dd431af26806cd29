"""The run store: runs, step runs, content-addressed artifacts, lineage edges and metrics.

SQLAlchemy Core over SQLite (``<notebook_dir>/.same/same.db``) or any URL in ``SAME_NB_DB``
(PostgreSQL). One Engine per Store. On SQLite every write is ``BEGIN IMMEDIATE`` in WAL mode with a
30 s busy timeout, so concurrent ``same-nb run`` processes queue for the lock instead of failing.
"""
from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError

from same_nb.errors import SameError
from same_nb.store.schema import (
    RUN_STATUSES,
    STEP_STATUSES,
    artifact_row,
    artifacts,
    as_str,
    check_choice,
    check_json,
    edge_row,
    metric_row,
    notebook_snapshots,
    runs,
    step_run_artifacts,
    step_runs,
)
from same_nb.store.schema import metrics as metrics_table

DB_ENV = "SAME_NB_DB"
TARGETS = ("local", "kubeflow")
ACTIVE = ("pending", "running")
RESUMABLE_STEP_STATUSES = ("failed", "skipped", "cancelled", "interrupted", "pending")
_CACHEABLE = ("success", "cached")
_SUPPORTED_BACKENDS = ("sqlite", "postgresql")
_PG_CREATE_LOCK = 0x5A3E_0001  # advisory lock id serializing migrations across processes
SCHEMA_REVISION = "0002"       # the newest revision in same_nb/migrations/versions
_HAS_PROC = Path("/proc/self/stat").exists()
MAX_RUN_ID = 2**63 - 1         # the largest id SQLite and PostgreSQL (bigint) can hold


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


class Store:
    """All reads and writes of run records. Open it with :func:`open_store`."""

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

    # -- writes ------------------------------------------------------------------------------

    def create_run(self, *, notebook_path: str | Path, notebook_sha256: str, pipeline_name: str,
                   params: dict[str, Any], target: str, run_dir_root: Path) -> int:
        """Record a new running run driven by this process; return its number."""
        check_choice("target", target, TARGETS)
        check_json(f"parameters of pipeline {pipeline_name!r}", params)
        notebook = Path(notebook_path).resolve()
        now, pid = _now(), os.getpid()
        row = dict(notebook_path=str(notebook), notebook_sha256=notebook_sha256,
                   pipeline_name=pipeline_name, params=params, target=target, status="running",
                   created_at=now, started_at=now, git_commit=_git_commit(notebook.parent),
                   user=_user(), host=socket.gethostname(), pid=pid,
                   pid_started=_process_started(pid))
        source = _notebook_bytes(notebook, notebook_sha256)
        with self._tx(write=True) as conn:
            run_id = conn.execute(insert(runs).values(row)).inserted_primary_key[0]
            run_dir = Path(run_dir_root).resolve() / str(run_id)
            conn.execute(update(runs).where(runs.c.id == run_id).values(run_dir=str(run_dir)))
            if source is not None:
                conn.execute(_insert_ignore(conn, notebook_snapshots),
                             dict(sha256=notebook_sha256, content=source, created_at=now))
        return run_id

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

    def add_step_runs(self, run_id: int, step_names: Iterable[str]) -> dict[str, int]:
        """Add one pending step run per name; return {step name: step run id}."""
        names = list(step_names)
        dupes = sorted(n for n, k in Counter(names).items() if k > 1)
        if dupes:
            raise SameError(f"run {run_id}: duplicate step names {dupes}")
        if not names:
            return {}
        with self._tx(write=True) as conn:
            _require(conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first(),
                     f"no run {run_id}")
            rows = conn.execute(
                insert(step_runs).returning(step_runs.c.id, step_runs.c.step_name,
                                            sort_by_parameter_order=True),
                [dict(run_id=run_id, step_name=n, status="pending", cache_hit=False)
                 for n in names],
            ).all()
        return {name: step_run_id for step_run_id, name in rows}

    def start_step(self, step_run_id: int, *, cache_key: str | None, cache_info: dict | None,
                   reason: str | None, code_sha256: str | None) -> None:
        check_json(f"cache info of step run {step_run_id}", cache_info)
        with self._tx(write=True) as conn:
            _require(conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(
                status="running", started_at=_now(), cache_key=cache_key, cache_info=cache_info,
                reason=reason, code_sha256=code_sha256)).rowcount, f"no step run {step_run_id}")

    def finish_step(self, step_run_id: int, *, status: str, inputs: list[dict], outputs: list[dict],
                    executed_notebook: str | Path | None, log_path: str | Path | None,
                    error: dict | None = None, cache_hit: bool = False,
                    metrics: Iterable[dict] = ()) -> None:
        """Record a step's end, its artifacts, lineage edges and metrics in ONE transaction."""
        check_choice("step status", status, STEP_STATUSES)
        check_json(f"error of step run {step_run_id}", error)
        edges = ([edge_row(step_run_id, "in", r) for r in inputs]
                 + [edge_row(step_run_id, "out", r) for r in outputs])
        now = _now()
        arts = {r["sha256"]: artifact_row(r, now) for r in [*inputs, *outputs]}
        metric_rows = [metric_row(step_run_id, m, now) for m in metrics]
        with self._tx(write=True) as conn:
            started = conn.execute(select(step_runs.c.started_at)
                                   .where(step_runs.c.id == step_run_id)).first()
            _require(started, f"no step run {step_run_id}")
            duration = (now - started[0]).total_seconds() if started[0] else None
            conn.execute(update(step_runs).where(step_runs.c.id == step_run_id).values(
                status=status, finished_at=now, duration_s=duration, cache_hit=cache_hit,
                executed_notebook=as_str(executed_notebook), log_path=as_str(log_path),
                error=error))
            if arts:
                conn.execute(_insert_ignore(conn, artifacts), list(arts.values()))
            if edges:
                conn.execute(insert(step_run_artifacts), edges)
            if metric_rows:
                conn.execute(insert(metrics_table), metric_rows)

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

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        check_choice("run status", status, RUN_STATUSES)
        finished = None if status in ACTIVE else _now()
        with self._tx(write=True) as conn:
            _require(conn.execute(update(runs).where(runs.c.id == run_id).values(
                status=status, finished_at=finished, error=error)).rowcount, f"no run {run_id}")

    def mark_interrupted_runs(self) -> list[int]:
        """Mark this host's pending/running runs whose driving process is gone as interrupted."""
        host = socket.gethostname()
        with self._tx(write=False) as conn:
            active = conn.execute(select(runs.c.id, runs.c.pid, runs.c.pid_started).where(
                runs.c.status.in_(ACTIVE), runs.c.host == host,
                runs.c.remote_id.is_(None))).all()     # a remote run outlives its submitting process
        dead = [run_id for run_id, pid, started in active
                if pid is not None and not _pid_alive(pid, started)]
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

    # -- reads -------------------------------------------------------------------------------

    def list_runs(self, limit: int = 50, offset: int = 0, notebook_path: str | Path | None = None,
                  folder: str | Path | None = None) -> list[dict]:
        """Runs newest first, each with ``step_counts`` ({status: n}) and ``duration_s``; only the
        runs of one notebook, or of the notebooks directly in ``folder`` (a store shared by several
        folders, or by several Jupyter servers, holds others)."""
        if limit < 0 or offset < 0:
            raise SameError(f"invalid page: limit {limit}, offset {offset} must be >= 0")
        query = _scoped(select(runs), notebook_path, folder).order_by(runs.c.id.desc()).limit(limit).offset(offset)
        with self._tx(write=False) as conn:
            rows = [_run_dict(r) for r in conn.execute(query).mappings()]
            counts = conn.execute(
                select(step_runs.c.run_id, step_runs.c.status, func.count())
                .where(step_runs.c.run_id.in_([r["id"] for r in rows]))
                .group_by(step_runs.c.run_id, step_runs.c.status)).all()
        by_id = {r["id"]: r for r in rows}
        for run_id, status, n in counts:
            by_id[run_id]["step_counts"][status] = n
        return rows

    def count_runs(self, notebook_path: str | Path | None = None, folder: str | Path | None = None) -> int:
        query = _scoped(select(func.count()).select_from(runs), notebook_path, folder)
        with self._tx(write=False) as conn:
            return conn.execute(query).scalar_one()

    def get_run(self, run_id: int) -> dict | None:
        """One run with ``step_counts`` and ``steps`` (each with inputs, outputs and metrics); None
        when there is no such run (an id no database column can hold included)."""
        if not valid_run_id(run_id):
            return None
        with self._tx(write=False) as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                return None
            steps = [dict(s) | {"inputs": [], "outputs": [], "metrics": []} for s in conn.execute(
                select(step_runs).where(step_runs.c.run_id == run_id).order_by(step_runs.c.id)
            ).mappings()]
            edges = conn.execute(_edges_query().join(
                step_runs, step_runs.c.id == step_run_artifacts.c.step_run_id).where(
                step_runs.c.run_id == run_id)).mappings().all()
            metric_rows = conn.execute(select(metrics_table).join(step_runs).where(
                step_runs.c.run_id == run_id).order_by(metrics_table.c.id)).mappings().all()
        by_id = {s["id"]: s for s in steps}
        for e in edges:
            key = "inputs" if e["direction"] == "in" else "outputs"
            by_id[e["step_run_id"]][key].append(_artifact_record(e))
        for m in metric_rows:
            by_id[m["step_run_id"]]["metrics"].append(
                {k: m[k] for k in ("name", "value", "step", "logged_at")})
        run = _run_dict(row)
        run["steps"] = steps
        for s in steps:
            run["step_counts"][s["status"]] = run["step_counts"].get(s["status"], 0) + 1
        return run

    def run_metrics(self, run_ids: Iterable[int]) -> list[dict]:
        """Every metric of the given runs: {run_id, step_name, name, value, step, logged_at}."""
        m = metrics_table.c
        query = (select(step_runs.c.run_id, step_runs.c.step_name, m.name, m.value, m.step,
                        m.logged_at)
                 .join(step_runs).where(step_runs.c.run_id.in_(list(run_ids)))
                 .order_by(step_runs.c.run_id, m.id))
        with self._tx(write=False) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def find_cached(self, cache_key: str) -> dict | None:
        """The newest successful step run with this key whose output files all still exist."""
        with self._tx(write=False) as conn:  # a bounded scan: older hits are rarely still on disk
            candidates = conn.execute(
                select(step_runs.c.id, step_runs.c.run_id)
                .where(step_runs.c.cache_key == cache_key, step_runs.c.status.in_(_CACHEABLE))
                .order_by(step_runs.c.finished_at.desc(), step_runs.c.id.desc()).limit(20)).all()
            edges = conn.execute(_edges_query().where(
                step_run_artifacts.c.step_run_id.in_([c.id for c in candidates]),
                step_run_artifacts.c.direction == "out")).mappings().all()
        for step_run_id, run_id in candidates:
            outputs = [_artifact_record(e) for e in edges if e["step_run_id"] == step_run_id]
            if all(o["location"] and Path(o["location"]).exists() for o in outputs):
                return {"step_run_id": step_run_id, "run_id": run_id, "outputs": outputs}
        return None

    def step_file_inputs(self, step_run_id: int) -> list[dict]:
        """The files and datasets a step run read: a cache hit is valid only if they are unchanged."""
        with self._tx(write=False) as conn:
            edges = conn.execute(_edges_query().where(
                step_run_artifacts.c.step_run_id == step_run_id, step_run_artifacts.c.direction == "in",
                step_run_artifacts.c.role.in_(("file", "dataset")))).mappings().all()
        return [_artifact_record(e) for e in edges]

    def last_step_run(self, notebook_path: str | Path, step_name: str) -> dict | None:
        """The latest started-and-finished run of this step of this notebook (with cache_info)."""
        query = (select(step_runs).join(runs)
                 .where(runs.c.notebook_path == str(Path(notebook_path).resolve()),
                        step_runs.c.step_name == step_name, step_runs.c.started_at.is_not(None),
                        step_runs.c.finished_at.is_not(None))
                 .order_by(step_runs.c.finished_at.desc(), step_runs.c.id.desc()).limit(1))
        with self._tx(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def steps_to_resume(self, run_id: int) -> list[str]:
        """Names of the run's steps that did not succeed (failed, skipped, ..., pending)."""
        with self._tx(write=False) as conn:
            return list(conn.execute(
                select(step_runs.c.step_name).where(
                    step_runs.c.run_id == run_id,
                    step_runs.c.status.in_(RESUMABLE_STEP_STATUSES)).order_by(step_runs.c.id)
            ).scalars())


# -- helpers -----------------------------------------------------------------------------------

def valid_run_id(run_id: Any) -> bool:
    """Whether ``run_id`` is an int a run could have (1 ≤ id ≤ 2**63 - 1); larger ones overflow SQLite."""
    return isinstance(run_id, int) and not isinstance(run_id, bool) and 0 < run_id <= MAX_RUN_ID


def folder_prefix(folder: str | Path) -> str:
    """The resolved ``folder`` with a trailing separator: what its notebooks' recorded paths start with."""
    return str(Path(folder).resolve()).rstrip(os.sep) + os.sep


def _scoped(query: Any, notebook_path: str | Path | None, folder: str | Path | None) -> Any:
    if notebook_path is not None:
        query = query.where(runs.c.notebook_path == str(Path(notebook_path).resolve()))
    if folder is not None:
        # Exact prefix comparison, not LIKE: SQLite's LIKE ignores case, and '_' and '%' match more.
        prefix = folder_prefix(folder)
        path = runs.c.notebook_path
        query = query.where(func.substr(path, 1, len(prefix)) == prefix,
                            ~func.substr(path, len(prefix) + 1).contains(os.sep, autoescape=True))
    return query


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


def _edges_query() -> Any:
    return select(step_run_artifacts, artifacts.c.kind, artifacts.c.type, artifacts.c.size,
                  artifacts.c.location).join(artifacts).order_by(step_run_artifacts.c.name)


def _artifact_record(edge: Any) -> dict:
    return {"name": edge["name"], "sha256": edge["artifact_sha256"], "kind": edge["kind"],
            "type": edge["type"], "size": edge["size"], "location": edge["location"],
            "role": edge["role"]}


def _run_dict(row: Any) -> dict:
    run = dict(row)
    if run["started_at"] is None:
        run["duration_s"] = None
    else:
        run["duration_s"] = ((run["finished_at"] or _now()) - run["started_at"]).total_seconds()
    run["step_counts"] = {}
    return run


def _notebook_bytes(notebook: Path, sha256: str) -> bytes | None:
    """The notebook's bytes when they still hash to ``sha256`` (edited since compiling: None)."""
    try:
        raw = notebook.read_bytes()
    except OSError:
        return None
    return raw if hashlib.sha256(raw).hexdigest() == sha256 else None


def _require(found: Any, message: str) -> None:
    if not found:
        raise SameError(message)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def _git_commit(directory: Path) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                              text=True, timeout=2, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), or None without /proc or such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def _process_started(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def _pid_alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is still the live process that started at ``started`` (clock ticks)."""
    if os.name == "nt":
        return True  # signal 0 would be CTRL_C_EVENT on Windows: never probe there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    fields = _proc_stat(pid)
    if fields is None:
        return not _HAS_PROC
    if fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started
