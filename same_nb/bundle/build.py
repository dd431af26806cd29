"""Compile a notebook into a bundle: inspect, refuse on errors, optionally lock, write the files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from same_nb.errors import SameError
from same_nb.frontend.inspection import Inspection, inspect_notebook
from same_nb.frontend.ir import Pipeline


@dataclass
class CompileResult:
    inspection: Inspection
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    locks: object = None                  # lock.LockResult when compiled with locks


def default_bundle_dir(notebook: Path) -> Path:
    return notebook.parent / f"{notebook.stem}-pipeline"


def lock_notebook(path: str | Path, out_dir: str | Path | None = None, *, pipeline: Pipeline | None = None,
                  python_version: str | None = None, platform: str | None = None, conda: bool = False,
                  python: str | None = None, progress=None, observed: dict | None = None):
    """Per-step lockfiles under ``out_dir/envs/`` (uv with hashes; installed-environment fallback)."""
    from same_nb.envs.lock import lock_pipeline
    from same_nb.frontend.pipeline import build_pipeline

    notebook = Path(path)
    pipeline = pipeline or build_pipeline(notebook)
    out = Path(out_dir) if out_dir else default_bundle_dir(notebook)
    return lock_pipeline(pipeline, notebook.parent, out, python_version=python_version, platform=platform,
                         conda=conda, python=python, progress=progress, observed=observed)


def _attach_locks(manifest, locks, out: Path) -> None:
    from same_nb.frontend.manifest import LockRef, StepOverride

    for name, lock in locks.steps.items():
        override = manifest.steps.get(name) or StepOverride()
        override.lock = LockRef(path=str(Path(lock.lock_path).relative_to(out)), sha256=lock.lock_sha256,
                                fallback=lock.fallback)
        manifest.steps[name] = override


def compile_notebook(path: str | Path, out_dir: str | Path | None = None,
                     manifest_path: str | Path | None = None, *, lock: bool = False,
                     progress=None, learned: list[dict] | None = None,
                     check: Callable[[Inspection], None] | None = None, **lock_options) -> CompileResult:
    """Inspect, refuse on errors (and on whatever ``check`` raises: a target's own refusals, before
    anything is written), lock when asked, write the bundle."""
    from same_nb.bundle.writer import write_bundle
    from same_nb.frontend.manifest import dump_manifest

    inspection = inspect_notebook(path, manifest_path, learned=learned)
    if not inspection.ok:
        first = inspection.pipeline.errors[0]
        raise SameError(f"cannot compile: {first.render()}"
                        + (f" (and {len(inspection.pipeline.errors) - 1} more errors)"
                           if len(inspection.pipeline.errors) > 1 else ""), path=str(path))
    out = Path(out_dir) if out_dir else default_bundle_dir(Path(path))
    from same_nb.bundle.writer import check_bundle_dir

    check_bundle_dir(inspection.pipeline, out)          # refuse before anything is written
    if check is not None:
        check(inspection)
    locks = None
    if lock:
        locks = lock_notebook(path, out, pipeline=inspection.pipeline, progress=progress, **lock_options)
        _attach_locks(inspection.manifest, locks, out)
    bundle = write_bundle(inspection.pipeline, out, dump_manifest(inspection.manifest))
    result = CompileResult(inspection=inspection, out_dir=out, files=bundle.files, locks=locks)
    if locks is not None:
        result.files += sorted(p for s in locks.steps.values() for p in (s.requirements_in, s.lock_path))
        result.files += _ship_local_modules(locks, Path(path).parent, out)
    return result


def _ship_local_modules(locks, notebook_dir: Path, out: Path) -> list[Path]:
    """Local helper modules are not locked: the bundle carries them under modules/."""
    import shutil

    shipped = []
    for source in sorted({m for s in locks.steps.values() for m in s.local_modules}):
        source = Path(source)
        target = out / "modules" / source.relative_to(notebook_dir.resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
        shipped.append(target)
    return shipped


