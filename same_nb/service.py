"""The service layer: one place that the CLI, the Jupyter server extension and tests call.

Functions here take paths and plain values and return plain objects; they never print.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .dag import levels, topological_order
from .errors import SameError
from .ir import Pipeline


@dataclass
class Inspection:
    pipeline: Pipeline
    manifest: object                      # manifest.Manifest (resolved)
    order: list[str]
    levels: list[list[str]]

    @property
    def ok(self) -> bool:
        return not self.pipeline.errors

    def to_dict(self) -> dict:
        return {"ok": self.ok, "order": self.order, "levels": self.levels,
                "pipeline": self.pipeline.to_dict(),
                "manifest": self.manifest.model_dump(mode="json", exclude_none=True)}


@dataclass
class CompileResult:
    inspection: Inspection
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    locks: object = None                  # lock.LockResult when compiled with locks


def _manifest_for(pipeline: Pipeline, notebook: Path, manifest_path: str | Path | None):
    from .manifest import find_manifest, load_manifest, resolve_manifest

    found = find_manifest(notebook, Path(manifest_path) if manifest_path else None)
    manifest = load_manifest(found) if found else None
    return resolve_manifest(manifest, notebook, {p.name: p.default for p in pipeline.parameters},
                            [s.name for s in pipeline.steps])


def inspect_notebook(path: str | Path, manifest_path: str | Path | None = None) -> Inspection:
    from .pipeline import build_pipeline

    notebook = Path(path)
    pipeline = build_pipeline(notebook)
    manifest = _manifest_for(pipeline, notebook, manifest_path)
    if getattr(manifest.metadata, "name", None):
        pipeline.name = manifest.metadata.name
    names = [s.name for s in pipeline.steps]
    return Inspection(pipeline=pipeline, manifest=manifest, order=topological_order(names, pipeline.edges),
                      levels=levels(names, pipeline.edges))


def default_bundle_dir(notebook: Path) -> Path:
    return notebook.parent / f"{notebook.stem}-pipeline"


def lock_notebook(path: str | Path, out_dir: str | Path | None = None, *, pipeline: Pipeline | None = None,
                  python_version: str | None = None, platform: str | None = None, conda: bool = False,
                  python: str | None = None, progress=None):
    """Per-step lockfiles under ``out_dir/envs/`` (uv with hashes; installed-environment fallback)."""
    from .lock import lock_pipeline
    from .pipeline import build_pipeline

    notebook = Path(path)
    pipeline = pipeline or build_pipeline(notebook)
    out = Path(out_dir) if out_dir else default_bundle_dir(notebook)
    return lock_pipeline(pipeline, notebook.parent, out, python_version=python_version, platform=platform,
                         conda=conda, python=python, progress=progress)


def verify_notebook(path: str | Path, out_dir: str | Path | None = None, *, progress=None, **lock_options):
    """Install each distinct lock into a clean cached venv and import every step's modules there."""
    from .verify import verify_locks

    result = lock_notebook(path, out_dir, progress=progress, **lock_options)
    return result, verify_locks(result, Path(path).parent, progress=progress)


def _attach_locks(manifest, locks, out: Path) -> None:
    from .manifest import LockRef, StepOverride

    for name, lock in locks.steps.items():
        override = manifest.steps.get(name) or StepOverride()
        override.lock = LockRef(path=str(Path(lock.lock_path).relative_to(out)), sha256=lock.lock_sha256,
                                fallback=lock.fallback)
        manifest.steps[name] = override


def compile_notebook(path: str | Path, out_dir: str | Path | None = None,
                     manifest_path: str | Path | None = None, *, lock: bool = False,
                     progress=None, **lock_options) -> CompileResult:
    from .bundle import write_bundle
    from .manifest import dump_manifest

    inspection = inspect_notebook(path, manifest_path)
    if not inspection.ok:
        first = inspection.pipeline.errors[0]
        raise SameError(f"cannot compile: {first.render()}"
                        + (f" (and {len(inspection.pipeline.errors) - 1} more errors)"
                           if len(inspection.pipeline.errors) > 1 else ""), path=str(path))
    out = Path(out_dir) if out_dir else default_bundle_dir(Path(path))
    from .bundle import check_bundle_dir

    check_bundle_dir(inspection.pipeline, out)          # refuse before anything is written
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


# -- local runs ------------------------------------------------------------------------------------

@dataclass
class RunResult:
    run_id: int
    run_dir: Path
    status: str
    seconds: float
    states: dict
    pipeline: Pipeline

    @property
    def ok(self) -> bool:
        return self.status == "success"


def resolve_params(pipeline: Pipeline, defaults: dict, overrides: list[tuple[str, str]],
                   params_file: str | Path | None = None) -> dict:
    """Defaults ← manifest ← --params file ← -p, each checked against the parameter's type."""
    from .params import coerce_value

    by_name = {p.name: p for p in pipeline.parameters}
    values = {p.name: defaults.get(p.name, p.default) for p in pipeline.parameters}
    sources: list[tuple[str, object, str]] = []
    if params_file:
        import yaml

        path = Path(params_file)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise SameError(f"cannot read parameters: {exc}", path=str(path)) from None
        if not isinstance(data, dict):
            raise SameError("the parameters file must map names to values", path=str(path))
        sources += [(k, v, str(path)) for k, v in data.items()]
    sources += [(k, v, f"-p {k}") for k, v in overrides]
    for name, raw, origin in sources:
        if name not in by_name:
            valid = ", ".join(by_name) or "none (the notebook has no parameters cell)"
            raise SameError(f"unknown parameter {name!r} (from {origin}); valid parameters: {valid}")
        values[name] = coerce_value(by_name[name], raw, source=origin)
    return values


def _isolated_kernels(notebook: Path, prepared) -> tuple[dict[str, str], str]:
    """Each step's kernel interpreter: a venv built from the step's lock plus ipykernel, and a copy
    of the step runtime on PYTHONPATH (never the environment same-nb itself is installed in)."""
    import shutil
    from importlib import metadata

    from . import __version__
    from .verify import ensure_kernel_venv

    runtime_root = notebook.parent / ".same" / "runtime" / __version__
    if not (runtime_root / "same_nb" / "runtime" / "step.py").exists():
        src = Path(__file__).parent / "runtime"
        tmp = runtime_root.with_name(f"{runtime_root.name}.tmp{os.getpid()}")
        shutil.copytree(src, tmp / "same_nb" / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp / "same_nb" / "__init__.py").write_text("")
        shutil.rmtree(runtime_root, ignore_errors=True)
        os.replace(tmp, runtime_root)
    locks = lock_notebook(notebook, prepared.bundle_dir, pipeline=prepared.pipeline)
    extra = []
    for dist in ("cloudpickle", "pyarrow"):       # what the runtime needs to pass values
        try:
            extra.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    pythons = {name: str(ensure_kernel_venv(lock, notebook.parent, extra_packages=extra))
               for name, lock in locks.steps.items()}
    return pythons, str(runtime_root)


def run_notebook(path: str | Path, *, params: list[tuple[str, str]] = (), params_file=None,
                 jobs: int | None = None, use_cache: bool = True, resume: int | None = None,
                 manifest_path=None, progress=None, snapshot: bool = False,
                 timeout: float | None = None, isolated: bool = False,
                 run_id: int | None = None) -> RunResult:
    """Compile (cached by content) and run the notebook locally; record everything in the store.

    ``run_id`` drives a run row created beforehand (by ``background.start_run``) instead of a new one.
    """
    import time

    from .prepared import prepare
    from .runner import RunRequest, Runner, default_jobs
    from .store import open_store

    started = time.time()
    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise SameError("no such notebook", path=str(path))
    if timeout is not None and not timeout > 0:
        raise SameError(f"--timeout must be a positive number of seconds, got {timeout}")
    from .kernels import discard_spare, start_spare_kernel
    from .prepared import is_prepared

    manifest_arg = Path(manifest_path) if manifest_path else None
    # Compiling takes about a second: start the first kernel meanwhile. A cached notebook compiles
    # instantly and may need no kernel at all, so it gets none.
    spare = None
    if not isolated and not is_prepared(notebook, manifest_arg):
        (notebook.parent / ".same").mkdir(exist_ok=True)
        spare = start_spare_kernel(kernel_name="python3", cwd=str(notebook.parent), env={"PYTHONHASHSEED": "0"},
                                   log=str(notebook.parent / ".same" / f"kernel-{os.getpid()}.log"))
    try:
        prepared = prepare(notebook, manifest_arg)
    except BaseException:
        discard_spare(spare)
        raise
    pipeline = prepared.pipeline
    store = open_store(notebook_dir=notebook.parent)
    try:
        reuse: dict[str, dict] = {}
        if resume is not None:
            previous = store.get_run(resume)
            if previous is None:
                raise SameError(f"there is no run {resume} to resume")
            if previous["notebook_sha256"] != pipeline.notebook_sha256:
                raise SameError(f"the notebook changed since run {resume}; start a new run instead of resuming")
            if params or params_file:
                raise SameError("--resume reuses the parameters of the run it resumes; drop -p/--params")
            values = dict(previous["params"])
            for s in previous["steps"]:
                if s["status"] in ("success", "cached"):
                    reuse[s["step_name"]] = {"outputs": s["outputs"], "reason": f"done in run {resume}"}
        else:
            values = resolve_params(pipeline, prepared.config.get("params", {}), list(params), params_file)
        manifest_file = Path(manifest_path) if manifest_path else notebook.parent / "same.yaml"
        if manifest_file.is_file():
            from .datasets import prepare_datasets

            prepare_datasets(manifest_file)         # a sha256 mismatch refuses the run here
        from .openlineage_events import lineage_config

        openlineage = lineage_config({"lineage": {"openlineage": prepared.config.get("openlineage")}}
                                     if prepared.config.get("openlineage") else None, base=notebook.parent)
        pythons, runtime_path = (_isolated_kernels(notebook, prepared) if isolated else ({}, None))
        if run_id is None:
            run_id = store.create_run(notebook_path=str(notebook), notebook_sha256=pipeline.notebook_sha256,
                                      pipeline_name=pipeline.name, params=values, target="local",
                                      run_dir_root=notebook.parent / ".same" / "runs")
        run_dir = notebook.parent / ".same" / "runs" / str(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        request = RunRequest(notebook=notebook, pipeline=pipeline, bundle_dir=prepared.bundle_dir, params=values,
                             jobs=jobs or default_jobs(), use_cache=use_cache and prepared.config.get("cache", True),
                             env=prepared.config.get("env", {}), step_env=prepared.config.get("step_env", {}),
                             reuse=reuse, snapshot=snapshot, timeout=timeout, pythons=pythons,
                             runtime_path=runtime_path, openlineage=openlineage, spare_kernel=spare)
        from .progress import PlainProgress
        progress = progress or PlainProgress()
        runner = Runner(request, store, run_id, run_dir, progress)
        status = "failed"
        try:
            states = runner.run()
            status = "success" if all(s.status in ("success", "cached") for s in states.values()) else "failed"
        except KeyboardInterrupt:
            status = "cancelled"
            raise
        finally:
            progress.stop()
            store.finish_run(run_id, status)
        return RunResult(run_id=run_id, run_dir=run_dir, status=status, seconds=time.time() - started,
                         states=states, pipeline=pipeline)
    finally:
        discard_spare(spare)                       # unless a step adopted it (then it is shut down already)
        store.close()


# -- Kubeflow ----------------------------------------------------------------------------------------

KFP_STATES = {"SUCCEEDED": "success", "FAILED": "failed", "CANCELED": "cancelled", "SKIPPED": "success"}


def compile_for_kubeflow(path: str | Path, out_dir=None, manifest_path=None, *, python_version=None,
                         platform=None, progress=None):
    from .kfp_compile import compile_kubeflow

    return compile_kubeflow(path, out_dir, manifest_path, python_version=python_version, platform=platform,
                            progress=progress)


def run_on_kubeflow(path: str | Path, host: str, *, params: list[tuple[str, str]] = (), params_file=None,
                    experiment=None, namespace=None, existing_token=None, wait: bool = False,
                    manifest_path=None, out_dir=None, progress=None):
    """Compile, upload and start a KFP run; record it in the store with its KFP run id.
    Returns (store run id, SubmittedRun)."""
    from .kfp_submit import run_kubeflow
    from .store import open_store

    notebook = Path(path).resolve()
    compiled, submitted = run_kubeflow(notebook, host, out_dir=out_dir, manifest_path=manifest_path,
                                       params=list(params), params_file=params_file, experiment=experiment,
                                       namespace=namespace, existing_token=existing_token, wait=wait,
                                       progress=progress)
    values = resolve_params(compiled.pipeline, compiled.defaults, list(params), params_file)
    with open_store(notebook_dir=notebook.parent) as store:
        run_id = store.create_run(notebook_path=str(notebook), notebook_sha256=compiled.pipeline.notebook_sha256,
                                  pipeline_name=compiled.name, params=values, target="kubeflow",
                                  run_dir_root=notebook.parent / ".same" / "runs")
        store.set_remote(run_id, remote_id=submitted.run_id, remote_url=submitted.url)
        final = KFP_STATES.get(submitted.state)
        if final:
            store.finish_run(run_id, final)
    return run_id, submitted


def refresh_remote_runs(store, runs: list[dict]) -> list[str]:
    """Update the status of unfinished Kubeflow runs in ``runs`` from their servers; returns notes
    for servers that could not be reached (the stored status is kept)."""
    from urllib.parse import urlsplit

    notes = []
    for run in runs:
        if run.get("target") != "kubeflow" or not run.get("remote_id") or run["status"] not in ("pending", "running"):
            continue
        url = urlsplit(run.get("remote_url") or "")
        if not url.scheme:
            continue
        from .kfp_submit import refresh_status

        try:
            status = refresh_status(f"{url.scheme}://{url.netloc}", run["remote_id"])
        except SameError as exc:
            notes.append(f"run {run['id']}: status not refreshed ({exc})")
            continue
        final = KFP_STATES.get(status.state)
        if final:
            store.finish_run(run["id"], final, error=status.error)
            run["status"] = final
    return notes
