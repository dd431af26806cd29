"""Compile once, run many times: the IR and bundle of a notebook, cached by content under .same/.

A cached run reads two small JSON files instead of importing nbformat, IPython and pydantic.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from same_nb._version import __version__
from same_nb.errors import SameError
from same_nb.frontend.ir import IR_VERSION, Pipeline


@dataclass
class Prepared:
    pipeline: Pipeline
    bundle_dir: Path
    config: dict          # {"params": {...}, "env": {...}, "step_env": {...}, "cache": bool}


def _content_key(notebook: Path, manifest: Path | None) -> str:
    from same_nb.bundle.templates import templates_dir

    h = hashlib.sha256(f"{__version__}/ir{IR_VERSION}".encode())
    for template in sorted(templates_dir().glob("*.j2")):   # generated cells change with templates
        h.update(template.read_bytes())
    h.update(notebook.read_bytes())
    if manifest is not None and manifest.exists():
        h.update(str(manifest.resolve()).encode())
        h.update(manifest.read_bytes())
    learned = notebook.parent / ".same" / "learned.json"   # effects earlier runs taught change the plan
    if learned.exists():
        h.update(learned.read_bytes())
    return h.hexdigest()[:32]


def _run_config(manifest) -> dict:
    steps = manifest.steps or {}
    return {"params": dict(manifest.run.parameters), "env": dict(manifest.run.env or {}),
            "step_env": {n: dict(manifest.step_config(n).env or {}) for n in steps},
            "cache": bool(manifest.run.cache),
            "openlineage": (manifest.lineage.openlineage.model_dump(exclude_none=True)
                            if manifest.lineage and manifest.lineage.openlineage else None),
            "step_cache": {n: bool(manifest.step_config(n).cache) for n in steps},
            "checks": manifest.checks.to_config() if manifest.checks else None}


def _entry(notebook: Path, manifest_path: Path | None) -> tuple[Path, Path | None]:
    if manifest_path is None:
        # The same lookup as manifest.find_manifest, without importing pydantic on the cached path.
        candidate = notebook.parent / "same.yaml"
        manifest = candidate if candidate.exists() else None
    else:
        from same_nb.frontend.manifest import find_manifest

        manifest = find_manifest(notebook, Path(manifest_path))
    return notebook.parent / ".same" / "compiled" / _content_key(notebook, manifest), manifest


def is_prepared(notebook: Path, manifest_path: Path | None = None) -> bool:
    return (_entry(notebook, manifest_path)[0] / "prepared.json").exists()


def prepare(notebook: Path, manifest_path: Path | None = None) -> Prepared:
    root, manifest = _entry(notebook, manifest_path)
    done = root / "prepared.json"
    if done.exists():
        try:
            data = json.loads(done.read_text())
            return Prepared(Pipeline.from_dict(data["pipeline"]), root / "bundle", data["config"])
        except (OSError, ValueError, KeyError, TypeError):
            pass                                    # a damaged cache entry is rebuilt below

    from same_nb.bundle.build import compile_notebook
    from same_nb.store.learned import load_learned

    tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    result = compile_notebook(notebook, tmp / "bundle", manifest, learned=load_learned(notebook))
    pipeline = result.inspection.pipeline
    config = _run_config(result.inspection.manifest)
    pipeline_dict = pipeline.to_dict()
    (tmp / "prepared.json").write_text(json.dumps({"pipeline": pipeline_dict, "config": config}, default=str))
    try:
        os.replace(tmp, root)                        # atomic publish; a concurrent twin may win
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done.exists():
            raise SameError(f"cannot write the compiled pipeline under {root}: {exc}") from None
    return Prepared(Pipeline.from_dict(json.loads(done.read_text())["pipeline"]), root / "bundle", config)
