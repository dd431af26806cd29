"""Automatic file lineage: which files a step opened for reading and for writing.

A ``sys.addaudithook`` hook watches the "open" event (``open``, ``io.open``, ``os.open``, and so
every pandas/numpy/joblib writer that goes through them; C++ writers such as pyarrow's do not).
Audit hooks can't be removed, so the hook is installed once per process and does nothing while no
step is recording. After the step each file is hashed (sha256, streamed).

Paths inside the notebook folder are recorded relative to it; outside paths absolute. Ignored: the
runtime's own files (``.same/``), hidden folders, ``__pycache__``, Python sources read by imports,
the interpreter's prefixes and site-packages, temp dirs and system locations (/proc, /dev, /usr, ...).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import site
import sys
import sysconfig
import tempfile
from collections.abc import Iterator

_SYSTEM = ("/proc", "/dev", "/sys", "/etc", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/var",
           "/run", "/snap", "/boot")
_CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pth")
_installed = False


class _Recording:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.first: dict[str, str] = {}        # absolute path -> "read" | "write": first access
        self.written: set[str] = set()
        self.read: set[str] = set()
        self.read_before_write: dict[str, tuple[str, int]] = {}  # path -> (sha256, size) pre-write


_recording: _Recording | None = None
_datasets: list[dict] = []


def _ignored_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, tempfile.gettempdir(),
             *site.getsitepackages(), site.getusersitepackages(),
             *(p for p in sysconfig.get_paths().values())}
    return tuple(os.path.join(os.path.abspath(r), "") for r in roots if r)


def _hook(event: str, args: tuple) -> None:
    if _recording is None or event != "open":
        return
    path, mode, flags = args
    if isinstance(path, int) or path is None:
        return                                 # an already-open descriptor: its open was seen
    try:
        path = os.path.abspath(os.fsdecode(os.fspath(path)))
    except (TypeError, ValueError):
        return
    if isinstance(mode, str):
        write = any(c in mode for c in "wax+")
        read = "r" in mode or "+" in mode
    else:
        access = (flags or 0) & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        write, read = access != os.O_RDONLY, access != os.O_WRONLY
    rec = _recording
    if read:
        rec.first.setdefault(path, "read")
        rec.read.add(path)
    if write:
        if rec.first.setdefault(path, "write") == "read" and path not in rec.written:
            # The file is about to be truncated: keep the bytes the step read.
            rec.read_before_write[path] = _hash_file(path) or ("", 0)
        rec.written.add(path)


def start(root: str) -> None:
    """Record opens from now on; ``root`` is the notebook folder (the kernel's cwd)."""
    global _installed, _recording
    _datasets.clear()
    _recording = _Recording(root)
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Opens made by the runtime itself (reading same.yaml, hashing) are not the step's files."""
    global _recording
    saved, _recording = _recording, None
    try:
        yield
    finally:
        _recording = saved


def note_dataset(record: dict) -> None:
    """Called by ``same_nb.dataset`` inside a step: the dataset becomes a lineage input."""
    if _recording is not None and all(d["name"] != record["name"] for d in _datasets):
        _datasets.append(record)


def stop() -> dict:
    """Stop recording; hash what was opened: ``{"files": [{name, direction, sha256, size,
    location}], "datasets": [...]}`` for the step's result file."""
    global _recording
    rec, _recording = _recording, None
    if rec is None:
        return {"files": [], "datasets": []}
    ignored = _ignored_roots()
    files = []
    for path in sorted(rec.first):
        name = _name(path, rec.root, ignored)
        if name is None or not os.path.isfile(path):
            continue
        if rec.first[path] == "read":
            pre = rec.read_before_write.get(path)
            digest = pre if pre and pre[0] else _hash_file(path)
            if digest:
                files.append(_record(name, "in", path, *digest))
        if path in rec.written:
            digest = _hash_file(path)
            if digest:
                files.append(_record(name, "out", path, *digest))
    return {"files": files, "datasets": list(_datasets)}


def _record(name: str, direction: str, path: str, sha: str, size: int) -> dict:
    return {"name": name, "direction": direction, "sha256": sha, "size": size, "location": path,
            "kind": "file", "role": "file"}


def _name(path: str, root: str, ignored: tuple[str, ...]) -> str | None:
    """The recorded name of ``path``, or None when it is not the step's data."""
    if path.endswith(_CODE_SUFFIXES):
        return None
    inside = path.startswith(os.path.join(root, ""))
    rel = path[len(root) + 1:] if inside else path
    parts = rel.split(os.sep)
    if any(p.startswith(".") or p == "__pycache__" for p in parts if p):
        return None
    if inside:
        return rel
    if path.startswith(ignored) or any(path == s or path.startswith(s + "/") for s in _SYSTEM):
        return None
    return path


def _hash_file(path: str) -> tuple[str, int] | None:
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    return h.hexdigest(), size


def result_records(result_path: str, variable_names: set[str]) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) lineage records from a step's result file: files read/written and
    datasets used. Names already taken by the step's variables are left out (one edge per name)."""
    import json

    try:
        with open(result_path, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        return [], []
    inputs = [{**d, "role": "dataset", "kind": "dataset"} for d in result.get("datasets", [])]
    outputs: list[dict] = []
    for rec in result.get("files", []):
        (inputs if rec["direction"] == "in" else outputs).append(
            {k: v for k, v in rec.items() if k != "direction"})
    return ([r for r in inputs if r["name"] not in variable_names],
            [r for r in outputs if r["name"] not in variable_names])
