"""Map API paths (relative to the Jupyter server root) to files, refusing anything that escapes it.

A request names files the way the Jupyter contents API does: ``folder/nb.ipynb``, relative to the
server root. Absolute paths and ``..`` are refused outright (400) rather than normalised, so a path
means the same thing to the user and to the server; a symlink that leads outside the root is 403.
Hidden files and folders are 404 unless the contents manager allows them (``allow_hidden``), as in
Jupyter's own contents API.

Files the API reads because the run store names them (logs, executed notebooks, lineage files) are
never trusted: :func:`open_confined` resolves them at read time and opens only regular files whose
real path lies inside an allowed folder of the server root.
"""
from __future__ import annotations

import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from same_nb.errors import SameError


class PathError(SameError):
    """A refused path; ``status`` is the HTTP status the handler answers with."""

    def __init__(self, message: str, *, path: str | None, status: int):
        super().__init__(message, path=path)
        self.status = status


def _is_absolute(api_path: str) -> bool:
    return (api_path.startswith(("/", "\\")) or PurePosixPath(api_path).is_absolute()
            or (len(api_path) > 1 and api_path[1] == ":"))          # C:\… on Windows


HIDDEN_MESSAGE = ("hidden files and folders are not served (the Jupyter server runs with "
                  "ContentsManager.allow_hidden=False)")


def is_hidden(root: Path, target: Path) -> bool:
    """Whether ``target`` (inside the resolved ``root``) is hidden or lies in a hidden folder below the
    root: a name starting with '.', or what Jupyter's ``is_file_hidden`` says (UF_HIDDEN, unlistable)."""
    from jupyter_core.paths import is_file_hidden

    parts = target.relative_to(root).parts
    if any(p.startswith(".") for p in parts):
        return True
    here = root
    for part in parts:
        here = here / part
        try:
            if is_file_hidden(str(here)):
                return True
        except OSError:
            return False
    return False


def resolve_in_root(root_dir: str | Path, api_path: str, *, kind: str = "notebook",
                    allow_hidden: bool = True) -> Path:
    """The real path of ``api_path`` under ``root_dir``.

    ``kind`` is ``"notebook"`` (an existing ``.ipynb`` file), ``"dir"`` (an existing folder) or
    ``"any"`` (an existing notebook or folder). Without ``allow_hidden``, a path that is hidden or
    leads through a hidden folder (as written or once resolved) is 404 whether it exists or not.
    Raises :class:`PathError`.
    """
    if not isinstance(api_path, str):
        raise PathError("the path must be a string", path=None, status=400)
    if "\x00" in api_path:
        raise PathError("the path contains a NUL character", path=None, status=400)
    try:
        api_path.encode("utf-8")
    except UnicodeEncodeError:
        raise PathError("the path is not valid Unicode text (it holds a lone surrogate)", path=None,
                        status=400) from None
    if _is_absolute(api_path):
        raise PathError("absolute paths are refused; give the path relative to the Jupyter "
                        "server root (as the file browser shows it)", path=api_path, status=400)
    parts = api_path.replace("\\", "/").split("/")
    if ".." in parts:
        raise PathError("'..' is refused in paths; give the path relative to the Jupyter server "
                        "root without leaving it", path=api_path, status=400)
    root = Path(root_dir).resolve()
    try:
        target = (root.joinpath(*[p for p in parts if p not in ("", ".")])).resolve()
        is_dir, is_file = target.is_dir(), target.is_file()
    except OSError as exc:  # e.g. a name longer than the filesystem allows: bad input, not a 500
        raise PathError(f"unusable path: {exc.strerror or exc}", path=api_path, status=400) from None
    if target != root and root not in target.parents:
        raise PathError("the path leads outside the Jupyter server root (through a symbolic link)",
                        path=api_path, status=403)
    if not allow_hidden and (any(p.startswith(".") for p in parts if p not in ("", "."))
                             or (target != root and is_hidden(root, target))):
        raise PathError(HIDDEN_MESSAGE, path=api_path, status=404)
    if kind == "dir" or (kind == "any" and is_dir):
        if not is_dir:
            raise PathError("no such folder", path=api_path, status=404)
        return target
    if not is_file:
        raise PathError("no such notebook", path=api_path, status=404)
    if target.suffix != ".ipynb":
        raise PathError("not a notebook (expected a .ipynb file)", path=api_path, status=400)
    return target


def to_api_path(root_dir: str | Path, path: str | Path | None) -> str | None:
    """``path`` relative to the server root with '/' separators, or None if it is outside the root
    (or not a usable path at all: a run store may hold anything)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    root = Path(root_dir).resolve()
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None
    if real == root:
        return ""
    if root not in real.parents:
        return None
    return real.relative_to(root).as_posix()


def inside(base: str | Path, real: str | Path) -> bool:
    """Whether the real path ``real`` is ``base`` or below it (both already resolved)."""
    base, real = str(base), str(real)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def runs_folder(root_dir: str | Path, folder: str | Path) -> Path | None:
    """The real ``<folder>/.same/runs`` where a folder's runs keep their files, or None when it is
    not inside the server root."""
    root = os.path.realpath(root_dir)
    real = os.path.realpath(Path(folder) / ".same" / "runs")
    return Path(real) if inside(root, real) else None


@contextmanager
def open_confined(path: str | Path, allowed: str | Path) -> Iterator[tuple[int, os.stat_result] | None]:
    """``(fd, stat)`` of the regular file ``path`` if its real path lies inside the real folder
    ``allowed``, else None. Checked when opening, never trusted from the run store: symbolic links
    are resolved first, the final name is opened without following a link, FIFOs and devices are
    refused without blocking, and on Linux the opened file's own path is checked again (a folder on
    the way swapped for a link in between)."""
    fd = None
    try:
        try:
            allowed = os.path.realpath(allowed)
            real = os.path.realpath(path)
        except (OSError, ValueError, TypeError):           # e.g. a NUL character or a number in the store
            yield None
            return
        if not inside(allowed, real):
            yield None
            return
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(real, flags)
            info = os.fstat(fd)
            opened = os.readlink(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else real
        except (OSError, ValueError):
            yield None
            return
        if not stat.S_ISREG(info.st_mode) or not inside(allowed, opened):
            yield None
            return
        yield fd, info
    finally:
        if fd is not None:
            os.close(fd)


def read_confined(path: str | Path, allowed: str | Path, *, limit: int, tail: bool = False) -> bytes | None:
    """Up to ``limit`` bytes (the last ones with ``tail``) of a file confined as in
    :func:`open_confined`; None when refused. A longer file without ``tail`` is refused too."""
    with open_confined(path, allowed) as opened:
        if opened is None:
            return None
        fd, info = opened
        if tail:
            os.lseek(fd, max(0, info.st_size - limit), os.SEEK_SET)
        elif info.st_size > limit:
            return None
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def relative_to_root(data: Any, root_dir: str | Path) -> Any:
    """``data`` (JSON-like) with the server root's absolute path taken out of every string, so answers
    never show where the server's files are: ``/srv/root/work/x`` becomes ``work/x``."""
    forms = {str(Path(root_dir).expanduser()), os.path.realpath(root_dir)}
    forms = sorted((f.rstrip(os.sep) for f in forms if f.rstrip(os.sep)), key=len, reverse=True)
    if not forms:
        return data
    pattern = re.compile("|".join(re.escape(f) for f in forms) + r"(?:/|(?![\w.-]))")

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            if not any(f in value for f in forms):
                return value
            return pattern.sub(lambda m: "" if m.group().endswith("/") else ".", value)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [fix(v) for v in value]
        return value

    return fix(data)
