"""Learned effects: what a run observed that the static plan missed, kept for the next compile.

A step that changed an input later steps also read (through an alias, a notebook function, a library
call), or two steps that touched one file without waiting for each other, fail their run loudly; the
effect is written here so the next ``inspect``/``compile``/``run`` carries it ("learned from run N").
``same-nb forget NB`` drops them.

One JSON file per folder, ``.same/learned.json``: ``{"notebooks": {"nb.ipynb": [entry, ...]}}`` with
entries ``{"kind": "mutation", "step", "name", "run", "how"}`` and
``{"kind": "order", "before", "after", "why", "run"}``. Learned effects only ever add edges or move a
value's producer later, so one that no longer applies costs parallelism, never correctness.
"""
from __future__ import annotations

from pathlib import Path

from same_nb.store.notebook_files import read_notebooks, write_notebooks

_IDENTITY = {"mutation": ("step", "name"), "order": ("before", "after")}


def learned_path(notebook: Path) -> Path:
    return Path(notebook).resolve().parent / ".same" / "learned.json"


def _read(path: Path) -> dict:
    return read_notebooks(path, "the learned effects", "delete the file to start afresh")


def _write(path: Path, data: dict) -> None:
    write_notebooks(path, data)


def _key(entry: dict) -> tuple:
    return (entry.get("kind"),) + tuple(entry.get(k) for k in _IDENTITY.get(entry.get("kind"), ()))


def load_learned(notebook: Path) -> list[dict]:
    """The effects learned for ``notebook`` (by file name within its folder), oldest first."""
    entries = _read(learned_path(notebook))["notebooks"].get(Path(notebook).name, [])
    return [e for e in entries if isinstance(e, dict) and e.get("kind") in _IDENTITY]


def record_learned(notebook: Path, entries: list[dict]) -> list[dict]:
    """Add ``entries``; returns the ones that were new."""
    path = learned_path(notebook)
    data = _read(path)
    current = data["notebooks"].setdefault(Path(notebook).name, [])
    known = {_key(e) for e in current}
    new = []
    for entry in entries:
        if _key(entry) not in known:
            known.add(_key(entry))
            current.append(entry)
            new.append(entry)
    if new:
        _write(path, data)
    return new


def forget_learned(notebook: Path, run: int | None = None) -> list[dict]:
    """Drop the learned effects of ``notebook`` (only those learned from ``run`` when given)."""
    path = learned_path(notebook)
    data = _read(path)
    current = data["notebooks"].get(Path(notebook).name, [])
    dropped = [e for e in current if run is None or e.get("run") == run]
    kept = [e for e in current if e not in dropped]
    if dropped:
        if kept:
            data["notebooks"][Path(notebook).name] = kept
        else:
            data["notebooks"].pop(Path(notebook).name, None)
        _write(path, data)
    return dropped


def describe(entry: dict) -> str:
    if entry["kind"] == "mutation":
        return f"step '{entry['step']}' changes '{entry['name']}' ({entry.get('how', 'in place')})"
    return f"step '{entry['after']}' runs after '{entry['before']}' ({entry.get('why', 'observed')})"
