"""The service layer: one place that the CLI, the Jupyter server extension and tests call.

Functions here take paths and plain values and return plain objects; they never print.
"""
from __future__ import annotations

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


def compile_notebook(path: str | Path, out_dir: str | Path | None = None,
                     manifest_path: str | Path | None = None) -> CompileResult:
    from .bundle import write_bundle
    from .manifest import dump_manifest

    inspection = inspect_notebook(path, manifest_path)
    if not inspection.ok:
        first = inspection.pipeline.errors[0]
        raise SameError(f"cannot compile: {first.render()}"
                        + (f" (and {len(inspection.pipeline.errors) - 1} more errors)"
                           if len(inspection.pipeline.errors) > 1 else ""), path=str(path))
    out = Path(out_dir) if out_dir else default_bundle_dir(Path(path))
    bundle = write_bundle(inspection.pipeline, out, dump_manifest(inspection.manifest))
    return CompileResult(inspection=inspection, out_dir=out, files=bundle.files)


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
        except (OSError, yaml.YAMLError) as exc:
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


def run_notebook(path: str | Path, *, params: list[tuple[str, str]] = (), params_file=None,
                 jobs: int | None = None, use_cache: bool = True, resume: int | None = None,
                 manifest_path=None, progress=None, snapshot: bool = False,
                 timeout: float | None = None) -> RunResult:
    """Compile (cached by content) and run the notebook locally; record everything in the store."""
    import time

    from .prepared import prepare
    from .runner import RunRequest, Runner, default_jobs
    from .store import open_store

    started = time.time()
    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise SameError("no such notebook", path=str(path))
    prepared = prepare(notebook, Path(manifest_path) if manifest_path else None)
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
        run_id = store.create_run(notebook_path=str(notebook), notebook_sha256=pipeline.notebook_sha256,
                                  pipeline_name=pipeline.name, params=values, target="local",
                                  run_dir_root=notebook.parent / ".same" / "runs")
        run_dir = notebook.parent / ".same" / "runs" / str(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        request = RunRequest(notebook=notebook, pipeline=pipeline, bundle_dir=prepared.bundle_dir, params=values,
                             jobs=jobs or default_jobs(), use_cache=use_cache and prepared.config.get("cache", True),
                             env=prepared.config.get("env", {}), step_env=prepared.config.get("step_env", {}),
                             reuse=reuse, snapshot=snapshot, timeout=timeout)
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
        store.close()
