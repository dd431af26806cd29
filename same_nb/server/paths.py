"""Map API paths (relative to the Jupyter server root) to files, refusing anything that escapes it.

A request names files the way the Jupyter contents API does: ``folder/nb.ipynb``, relative to the
server root. Absolute paths and ``..`` are refused outright (400) rather than normalised, so a path
means the same thing to the user and to the server; a symlink that leads outside the root is 403.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from same_nb.errors import SameError


class PathError(SameError):
    """A refused path; ``status`` is the HTTP status the handler answers with."""

    def __init__(self, message: str, *, path: str | None, status: int):
        super().__init__(message, path=path)
        self.status = status


def _is_absolute(api_path: str) -> bool:
    return (api_path.startswith(("/", "\\")) or PurePosixPath(api_path).is_absolute()
            or (len(api_path) > 1 and api_path[1] == ":"))          # C:\… on Windows


def resolve_in_root(root_dir: str | Path, api_path: str, *, kind: str = "notebook") -> Path:
    """The real path of ``api_path`` under ``root_dir``.

    ``kind`` is ``"notebook"`` (an existing ``.ipynb`` file), ``"dir"`` (an existing folder) or
    ``"any"`` (an existing notebook or folder). Raises :class:`PathError`.
    """
    if not isinstance(api_path, str):
        raise PathError("the path must be a string", path=None, status=400)
    if "\x00" in api_path:
        raise PathError("the path contains a NUL character", path=None, status=400)
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
    """``path`` relative to the server root with '/' separators, or None if it is outside the root."""
    if path is None:
        return None
    root = Path(root_dir).resolve()
    real = Path(os.path.realpath(path))
    if real == root:
        return ""
    if root not in real.parents:
        return None
    return real.relative_to(root).as_posix()
