"""The pipeline's bundle: every file a pod needs besides its packages, in one ``bundle.tar.gz``.

Pods get it through KFP's own artifact passing (a ``dsl.importer`` of its URI) or inside an image,
never through their command line or environment (Linux caps one argument at 128 KiB, and the
pipeline spec is stored in Kubernetes objects with 256 KB–1.5 MiB ceilings). Layout::

    same_nb/__init__.py, same_nb/_version.py      the notebooks' API (log_metric, dataset)
    same_nb/runtime/*.py                          the step runtime
    same_nb/kubeflow/{__init__,component,podenv}.py   what the component function calls
    steps/<step>/step.json, <step>.ipynb          the step notebook and its argument names
    steps/<step>/<local modules and datasets>     at their paths relative to the notebook
    envs/<step>/requirements.txt                  the step's hashed lock
    envs/uv.txt                                   uv, hashed, for pods that install the lock

The staged copy is kept under ``kfp/bundle/`` for reading; the archive is byte-stable (sorted
names, fixed dates and owners), so recompiling an unchanged notebook gives the same sha256.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path

from same_nb.bundle.escape import visible
from same_nb.frontend.ir import Pipeline, Step

BUNDLE_FILE = "bundle.tar.gz"
_POD_MODULES = ("__init__.py", "_version.py", "kubeflow/__init__.py", "kubeflow/component.py", "kubeflow/podenv.py")


def stage_step(stage: Path, pipeline: Pipeline, step: Step, launch: dict, notebook: Path, lock: str,
               local_modules: list[Path], shipped_data: dict[str, Path], notebook_dir: Path) -> list[Path]:
    """Write one step's files into the staging folder: step.json, the step notebook, its local modules
    and the shipped datasets (both at their paths relative to the notebook's folder), its lock."""
    folder = stage / "steps" / step.name
    shutil.rmtree(folder, ignore_errors=True)
    files = [write_text(folder / "step.json", json.dumps(launch, indent=1, sort_keys=True) + "\n"),
             copy_file(notebook, folder / launch["notebook"]),
             write_text(stage / "envs" / step.name / "requirements.txt", lock)]
    for module in local_modules:        # importable from the step's folder, as from the notebook's
        sources = [p for p in sorted(module.rglob("*.py")) if "__pycache__" not in p.parts] if module.is_dir() else [module]
        files += [copy_file(source, folder / source.relative_to(module.parent)) for source in sources]
    files += [copy_file(data, folder / data.relative_to(notebook_dir)) for data in shipped_data.values()]
    return files


def stage_runtime(stage: Path, uv_lock: str) -> list[Path]:
    """The same-nb files every pod runs (standard library only) and the hashed uv lock."""
    package = Path(__file__).resolve().parents[1]
    sources = [package / name for name in _POD_MODULES] + sorted((package / "runtime").glob("*.py"))
    files = [copy_file(path, stage / "same_nb" / path.relative_to(package)) for path in sources]
    return files + [write_text(stage / "envs" / "uv.txt", uv_lock)]


def archive(stage: Path, target: Path) -> str:
    """Pack the staging folder into ``target`` (tar.gz, byte-stable); returns its sha256."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in stage.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = tarfile.TarInfo(path.relative_to(stage).as_posix())
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    if not target.is_file() or target.read_bytes() != data:
        target.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def local_datasets(manifest, notebook_dir: Path, warnings: list[str]) -> dict[str, Path]:
    """same.yaml datasets given as local paths travel in the bundle, at the same relative path, so
    the notebook's relative reads and ``same_nb.dataset(name)`` work in pods; remote ones are
    fetched by the notebook itself."""
    from same_nb.store.datasets import fetch_dataset

    shipped = {}
    for name, spec in (manifest.datasets or {}).items():
        url = spec.url
        if "://" in url and not url.startswith("file://"):
            warnings.append(f"dataset {visible(name)}: {visible(url)} is not shipped to pods; the step must fetch it")
            continue
        record = fetch_dataset(name, {"url": url, "sha256": spec.sha256}, notebook_dir)   # verifies sha256
        path = Path(record["location"]).resolve()
        if notebook_dir in path.parents:
            shipped[name] = path
        else:
            warnings.append(f"dataset {visible(name)}: {visible(str(path))} is outside the notebook folder; not shipped to pods")
    return shipped


def shared_files(pipeline: Pipeline) -> list[str]:
    """Steps ordered by a file run in order, but each pod has its own filesystem: the later one will
    not find what the earlier one wrote."""
    return [f"{e.dst}: uses {', '.join(w[5:] for w in e.why)} from step {e.src}, but pods do not share "
            f"files; pass the data as a variable (or write it to shared storage)"
            for e in pipeline.edges if e.kind == "file"]


def renderer_for(lock: str) -> str:
    """nbconvert's HTML for the executed notebook when the lock has nbconvert, else a plain rendering."""
    return "nbconvert" if re.search(r"^nbconvert==", lock, re.M | re.I) else "basic"


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` unless the file already holds it: recompiling leaves files (and docker's cache) alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def copy_file(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    if not target.is_file() or target.read_bytes() != data:
        target.write_bytes(data)
    return target
