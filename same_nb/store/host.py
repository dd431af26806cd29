"""Facts about the process driving a run: who, where, which commit, and whether it still lives
(a pid alone is not enough: pids are reused, so its start time in clock ticks is kept too)."""
from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path

_HAS_PROC = Path("/proc/self/stat").exists()


def user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def git_commit(directory: Path) -> str | None:
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


def process_started(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def pid_alive(pid: int, started: int | None) -> bool:
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
