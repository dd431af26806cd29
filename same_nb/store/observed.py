"""What each step showed it needs when it last ran locally, kept for its lock.

A step's imports do not name everything it needs installed: ``load_iris(as_frame=True)`` loads pandas,
a DataFrame output crosses as an Arrow file. At the end of each step the runtime lists the third-party
modules loaded and, per output, what its value needs (``runtime/step.py``); the runner hands those here
and ``same-nb lock`` / ``verify`` / ``run --isolated`` / the Kubeflow compiler add them to the step's
lock (``envs/sources.py``).

One JSON file per folder, ``.same/observed.json``:
``{"notebooks": {"nb.ipynb": {"step": {"run": N, "modules": [...], "outputs": {"var": {"kind",
"type", "needs": [...]}}}}}}``. It is not ``.same/learned.json`` on purpose: that file's bytes are
part of the local compile cache key, and a run that only loaded a new module must not recompile.
A step's entry is replaced when a successful run observes something else (``run`` is the first run
that observed what it holds), so the file is rewritten only when what a lock needs changes.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from same_nb.errors import SameError
from same_nb.store.notebook_files import read_notebooks, write_notebooks


def observed_path(notebook: Path) -> Path:
    return Path(notebook).resolve().parent / ".same" / "observed.json"


def _read(path: Path) -> dict:
    return read_notebooks(path, "what earlier runs observed", "delete the file and run the notebook again")


def _valid(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("modules", []), list)
            and isinstance(entry.get("outputs", {}), dict))


def load_observed(notebook: Path) -> dict[str, dict]:
    """``{step: observation}`` for ``notebook`` (by file name within its folder); ``{}`` if it never ran."""
    steps = _read(observed_path(notebook))["notebooks"].get(Path(notebook).name, {})
    if not isinstance(steps, dict):
        return {}
    return {name: entry for name, entry in steps.items() if _valid(entry)}


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Two runs in one folder finishing together must not drop each other's steps (POSIX flock)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, data: dict) -> None:
    write_notebooks(path, data)


def clean(observation: dict, python: str | None = None) -> dict:
    """An observation as kept: the loaded modules a lock may need (no standard library, same-nb or kernel
    machinery, nothing no installed distribution provides), outputs' needs sorted."""
    from same_nb.envs.requirements import third_party_loaded

    outputs = {name: {"kind": rec.get("kind"), "type": rec.get("type"),
                      "needs": sorted({n for n in rec.get("needs") or [] if isinstance(n, str)})}
               for name, rec in sorted((observation.get("outputs") or {}).items()) if isinstance(rec, dict)}
    return {"run": observation.get("run"), "modules": third_party_loaded(observation.get("modules") or [], python),
            "outputs": outputs}


def _same(old: object, new: dict) -> bool:
    return isinstance(old, dict) and {**old, "run": None} == {**new, "run": None}


def record_observed(notebook: Path, observations: dict[str, dict], python: str | None = None) -> bool:
    """Keep ``{step: observation}`` (each as the runtime reported it, with the run id) as those steps'
    latest; returns whether the file changed. ``python``: the kernels' interpreter (default: this one)."""
    path = observed_path(notebook)
    cleaned = {step: clean(obs, python) for step, obs in observations.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path):
        try:
            data = _read(path)
        except SameError:
            data = {"notebooks": {}}          # rebuilt from this run: observations are only ever re-derived
        steps = data["notebooks"].get(Path(notebook).name)
        steps = dict(steps) if isinstance(steps, dict) else {}
        changed = {step: obs for step, obs in cleaned.items() if not _same(steps.get(step), obs)}
        if not changed:
            return False
        steps.update(changed)
        data["notebooks"][Path(notebook).name] = steps
        _write(path, data)
    return True
