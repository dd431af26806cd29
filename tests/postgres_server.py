"""A throwaway PostgreSQL cluster for tests: Debian's initdb/pg_ctl on 127.0.0.1, a free port,
a temp data directory; started once per test session and stopped when it ends.

Tests that need it skip ONLY when the PostgreSQL server binaries are absent (`.ci/run` installs them).
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

_server: dict | None = None


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name
                   .isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres() -> dict:
    """initdb refuses to run as root: run the server as the `postgres` system user then."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid}


def server_url() -> str:
    """The admin URL of the session's cluster, starting it on first use."""
    global _server
    if _server is not None:
        return _server["url"]
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install -y postgresql)")
    root = Path(tempfile.mkdtemp(prefix="same-nb-pg-"))
    data, port = root / "data", _free_port()
    user = _as_postgres()
    if user:
        os.chown(root, user["user"], user["group"])
    run = dict(check=True, capture_output=True, text=True, **user)
    subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], **run)
    options = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                    str(root / "log.txt"), "-w", "-t", "60", "start"], **run)
    _server = {"url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", "root": root,
               "stop": [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
               "user": user}
    atexit.register(stop_server)
    return _server["url"]


def stop_server() -> None:
    global _server
    if _server is None:
        return
    subprocess.run(_server["stop"], capture_output=True, **_server["user"])
    shutil.rmtree(_server["root"], ignore_errors=True)
    _server = None


def fresh_database() -> tuple[str, callable]:
    """(URL of a new empty database, drop function)."""
    admin_url = server_url()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop
